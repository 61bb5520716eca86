/**
 * `rpcnet sim` (also `deno task sim`): runs the membership simulator (real `ClusterMembership`
 * code on an in-memory network in virtual time) and prints a readable report, or JSON.
 *
 * @module
 */

import {
  formatSimReport,
  SIM_SCENARIOS,
  type SimScenario,
  simulate,
} from "../membership/sim/mod.ts";
import { bool, type Io, parseFlags, str, strs, UsageError } from "./common.ts";

/** Help of `rpcnet sim`. */
export const SIM_HELP =
  `usage: rpcnet sim [options]      (in the repository: deno task sim -- [options])
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

function num(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v)) {
    throw new UsageError(`--${name} must be a number, got '${text}'`);
  }
  return v;
}

/** Runs `rpcnet sim`; returns the exit code. */
export async function simCommand(args: string[], io: Io): Promise<number> {
  const p = parseFlags(args, {
    nodes: { type: "string" },
    scenario: { type: "string" },
    profile: { type: "string" },
    loss: { type: "string" },
    duration: { type: "string" },
    latency: { type: "string" },
    warmup: { type: "string" },
    jitter: { type: "string" },
    seed: { type: "string" },
    "no-lifeguard": { type: "boolean" },
    "pause-fraction": { type: "string" },
    "pause-ms": { type: "string" },
    "join-spread": { type: "string" },
    bootstrap: { type: "string" },
    set: { type: "string", multiple: true },
    json: { type: "boolean" },
  }, 0);
  if (p.values.help) {
    io.out(SIM_HELP + "\n");
    return 0;
  }
  const scenario = str(p, "scenario") ?? "join";
  if (!SIM_SCENARIOS.includes(scenario as SimScenario)) {
    throw new UsageError(
      `--scenario must be one of ${SIM_SCENARIOS.join(", ")}, got '${scenario}'`,
    );
  }
  const profile = str(p, "profile") ?? "LAN";
  if (!["LAN", "WAN", "LOCAL"].includes(profile)) {
    throw new UsageError(`--profile must be LAN, WAN or LOCAL, got '${profile}'`);
  }
  const bootstrap = str(p, "bootstrap") ?? "gossip";
  if (bootstrap !== "gossip" && bootstrap !== "preloaded") {
    throw new UsageError(`--bootstrap must be gossip or preloaded, got '${bootstrap}'`);
  }
  const memberConfig: Record<string, unknown> = {};
  for (const kv of strs(p, "set")) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`--set expects KEY=VALUE, got '${kv}'`);
    memberConfig[kv.slice(0, eq)] = num(`set ${kv.slice(0, eq)}`, kv.slice(eq + 1));
  }
  const report = await simulate({
    nodes: num("nodes", str(p, "nodes") ?? "1000"),
    scenario: scenario as SimScenario,
    profile: profile as "LAN" | "WAN" | "LOCAL",
    loss: num("loss", str(p, "loss") ?? "0"),
    durationMs: num("duration", str(p, "duration") ?? "60")! * 1000,
    latencyMs: num("latency", str(p, "latency") ?? "0.5"),
    warmupMs: num("warmup", str(p, "warmup") ?? "10")! * 1000,
    jitterMs: num("jitter", str(p, "jitter") ?? "0.5"),
    seed: num("seed", str(p, "seed") ?? "1"),
    lifeguard: !bool(p, "no-lifeguard"),
    pauseFraction: num("pause-fraction", str(p, "pause-fraction") ?? "0.05"),
    pauseMs: num("pause-ms", str(p, "pause-ms") ?? "2000"),
    joinSpreadMs: num("join-spread", str(p, "join-spread")),
    bootstrap,
    memberConfig,
    onProgress: (line) => io.err(line + "\n"),
  });
  io.out((bool(p, "json") ? JSON.stringify(report, null, 2) : formatSimReport(report)) + "\n");
  return 0;
}
