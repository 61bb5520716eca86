/**
 * `deno task sim -- --nodes 1000 --loss 0.1 --scenario false-positives --profile LAN --duration 600`
 *
 * Runs the membership simulator (real `ClusterMembership` code on an in-memory network in virtual
 * time) and prints a readable report; `--json` prints the raw report instead.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { formatSimReport, SIM_SCENARIOS, type SimScenario, simulate } from "../mod.ts";

const USAGE = `usage: deno task sim -- [options]
  --nodes N            cluster size (default 1000)
  --scenario S         ${SIM_SCENARIOS.join(" | ")} (default join)
  --profile P          LAN | WAN | LOCAL (default LAN)
  --loss P             packet loss probability during the measurement, 0..1 (default 0)
  --duration SEC       measurement window for false-positives / paused, virtual seconds (default 60)
  --warmup SEC         run this long after bootstrap before measuring (default 10)
  --latency MS         one-way latency floor (default 0.5)   --jitter MS   extra uniform latency (default 0.5)
  --seed N             random seed (default 1)
  --no-lifeguard       switch Lifeguard off (the paused scenario always runs both)
  --pause-fraction F   paused: fraction of nodes paused at a time (default 0.05)
  --pause-ms MS        paused: length of each pause (default 2000)
  --bootstrap B        gossip (replay every join, default) | preloaded (start converged: 10,000 nodes)
  --join-spread MS     bootstrap joins spread over this long (default min(10000, 2×nodes))
  --set KEY=VALUE      override a ClusterMembership timing knob (repeatable), e.g. --set suspicionMult=2
  --json               print the report as JSON
Run with --v8-flags=--expose-gc (the sim task does) for exact heap figures.`;

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args.filter((a) => a !== "--"),
    options: {
      nodes: { type: "string", default: "1000" },
      scenario: { type: "string", default: "join" },
      profile: { type: "string", default: "LAN" },
      loss: { type: "string", default: "0" },
      duration: { type: "string", default: "60" },
      latency: { type: "string", default: "0.5" },
      warmup: { type: "string", default: "10" },
      jitter: { type: "string", default: "0.5" },
      seed: { type: "string", default: "1" },
      "no-lifeguard": { type: "boolean", default: false },
      "pause-fraction": { type: "string", default: "0.05" },
      "pause-ms": { type: "string", default: "2000" },
      "join-spread": { type: "string" },
      bootstrap: { type: "string", default: "gossip" },
      set: { type: "string", multiple: true, default: [] },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  }).values;
} catch (e) {
  console.error(`${(e as Error).message}\n\n${USAGE}`);
  Deno.exit(2);
}
if (parsed.help) {
  console.log(USAGE);
  Deno.exit(0);
}

function num(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!Number.isFinite(v)) {
    console.error(`--${name} must be a number, got '${text}'\n\n${USAGE}`);
    Deno.exit(2);
  }
  return v;
}

const memberConfig: Record<string, unknown> = {};
for (const kv of parsed.set ?? []) {
  const eq = kv.indexOf("=");
  const value = num(`set ${kv}`, kv.slice(eq + 1));
  if (eq <= 0) {
    console.error(`--set expects KEY=VALUE, got '${kv}'\n\n${USAGE}`);
    Deno.exit(2);
  }
  memberConfig[kv.slice(0, eq)] = value;
}

try {
  const report = await simulate({
    nodes: num("nodes", parsed.nodes),
    scenario: parsed.scenario as SimScenario,
    profile: parsed.profile as "LAN" | "WAN" | "LOCAL",
    loss: num("loss", parsed.loss),
    durationMs: num("duration", parsed.duration)! * 1000,
    latencyMs: num("latency", parsed.latency),
    warmupMs: num("warmup", parsed.warmup)! * 1000,
    jitterMs: num("jitter", parsed.jitter),
    seed: num("seed", parsed.seed),
    lifeguard: !parsed["no-lifeguard"],
    pauseFraction: num("pause-fraction", parsed["pause-fraction"]),
    pauseMs: num("pause-ms", parsed["pause-ms"]),
    joinSpreadMs: num("join-spread", parsed["join-spread"]),
    bootstrap: parsed.bootstrap as "gossip" | "preloaded",
    memberConfig,
    onProgress: (line) => console.error(line),
  });
  console.log(parsed.json ? JSON.stringify(report, null, 2) : formatSimReport(report));
} catch (e) {
  console.error(`sim failed: ${(e as Error)?.message ?? e}`);
  Deno.exit(1);
}
