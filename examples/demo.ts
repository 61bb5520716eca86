/**
 * `deno task demo`: a director and three worker processes on localhost, plus a client that
 * generates load through the director without joining the gossip.
 *
 * 1. membership forms (NodeJoined as each worker process joins);
 * 2. steady load: requests per worker for the chosen strategy;
 * 3. one worker is SIGKILLed mid-load: NodeFailed, idempotent calls fail over, none fail;
 * 4. the worker is restarted: it rejoins and receives traffic again;
 * 5. a summary table; exit 0 when no idempotent call failed and the worker came back.
 *
 * ```sh
 * deno task demo                              # least_connections
 * deno task demo -- --strategy p2c_peak_ewma  # any of the six strategies
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  type ClusterEvent,
  createDevCa,
  Director,
  Node,
  RpcClient,
  STRATEGIES,
  type StrategyName,
} from "../mod.ts";
import { WorkerProcess, writeCaFile } from "./worker_process.ts";

const { values: args } = parseArgs({
  args: Deno.args.filter((a) => a !== "--"), // `deno task demo -- --x` passes the "--" on
  options: {
    strategy: { type: "string", default: "least_connections" },
    concurrency: { type: "string", default: "32" },
    "phase-ms": { type: "string", default: "3000" },
  },
});
const strategy = args.strategy as StrategyName;
if (!STRATEGIES.includes(strategy)) {
  console.error(`unknown strategy '${strategy}'; one of: ${STRATEGIES.join(", ")}`);
  Deno.exit(2);
}
const concurrency = Number(args.concurrency);
const phaseMs = Number(args["phase-ms"]);

// ---- output: colours only on a terminal (and not under NO_COLOR), plain text in a log ----------
const color = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
const paint = (code: number) => (s: string) => color ? `\x1b[${code}m${s}\x1b[0m` : s;
const bold = paint(1),
  dim = paint(2),
  red = paint(31),
  green = paint(32),
  yellow = paint(33),
  cyan = paint(36);
const t0 = performance.now();
const stamp = () => dim(`[${((performance.now() - t0) / 1000).toFixed(2).padStart(6)}s]`);
const log = (msg: string) => console.log(`${stamp()} ${msg}`);
const heading = (msg: string) => console.log(`\n${bold(msg)}`);

// ---- cluster ------------------------------------------------------------------------------------
const WORKERS = [
  { id: "w1", tags: "role=worker,zone=eu-1" },
  { id: "w2", tags: "role=worker,zone=eu-2" },
  { id: "w3", tags: "role=worker,zone=us-1" },
];
const VICTIM = "w2";

console.log(
  bold("@rpcnet/cluster demo") + ` — strategy ${cyan(strategy)}, ${concurrency} calls in flight`,
);
const ca = await createDevCa();
const caFile = await writeCaFile(ca);
log(`development CA minted; shared with the worker processes through ${caFile}`);

const director = await Node.start({
  id: "director",
  profile: "LOCAL",
  tags: { role: "director" },
  devCa: ca,
  strategy,
});
const front = await Director.start({
  client: director.client,
  server: { devCa: ca },
  methods: { compute: { filter: "role=worker", idempotent: true } },
});
log(
  `director up: gossip ${director.gossipAddr}, forwarding 'compute' on ${front.addr.hostname}:${front.addr.port}`,
);

// Cluster events as the director sees them.
const seen: { at: number; event: ClusterEvent }[] = [];
const eventColor: Record<string, (s: string) => string> = {
  NodeJoined: green,
  NodeRecovered: green,
  NodeFailed: red,
  NodeSuspect: yellow,
  NodeLeft: yellow,
  NodeUpdated: cyan,
};
const events = director.nodes.subscribe();
const eventLoop = (async () => {
  for await (const event of events) {
    seen.push({ at: performance.now(), event });
    if (!("node" in event)) {
      log(`${yellow(event.type)}`);
      continue;
    }
    const tags = Object.entries(event.node.tags).map(([k, v]) => `${k}=${v}`).join(",");
    log(
      `${(eventColor[event.type] ?? cyan)(event.type.padEnd(13))} ${event.node.id.padEnd(4)} ` +
        dim(`rpc ${event.node.rpcAddr}  tags ${tags}  incarnation ${event.node.incarnation}`),
    );
  }
})();
const waitUntil = async (cond: () => boolean, what: string, timeoutMs = 20_000) => {
  const until = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

const procs = new Map<string, WorkerProcess>();
let exitCode = 1;
let loadStop = false;
let loadDone: Promise<void> = Promise.resolve();
try {
  heading("1. membership forms");
  const spawned = await Promise.all(
    WORKERS.map((w) =>
      WorkerProcess.spawn({
        id: w.id,
        tags: w.tags,
        seeds: [director.gossipAddr],
        caFile,
        delayMs: 2,
      })
    ),
  );
  for (const p of spawned) procs.set(p.info.id, p);
  await waitUntil(() => director.registry.workers("role=worker").length === 3, "three workers");
  log(
    `membership formed: ${director.nodes.alive().map((m) => m.id).join(", ")} alive ` +
      dim(`(worker pids ${spawned.map((p) => p.child.pid).join(", ")})`),
  );

  // ---- load: a plain RpcClient to the director (it never joins the gossip) ----------------------
  const caller = await RpcClient.connect({
    hostname: "127.0.0.1",
    port: front.addr.port,
    devCa: ca,
  });
  type Phase = "steady" | "after kill" | "after rejoin";
  let phase: Phase = "steady";
  const perPhase = new Map<Phase, Map<string, number>>();
  let ok = 0, failed = 0;
  const failures: string[] = [];
  let window = new Map<string, number>();
  const lastSeen = new Map<string, number>();
  loadDone = Promise.all(Array.from({ length: concurrency }, async (_, i) => {
    let n = i;
    while (!loadStop) {
      // A call counts in the phase it started in: a response w2 sent just before its SIGKILL
      // can still arrive after the kill, but no call started after the kill can reach it.
      const startedIn = phase;
      try {
        const r = await caller.call<{ worker: string; result: number }>("compute", { n }, {
          timeoutMs: 15_000,
        });
        if (r.result !== n * n) throw new Error(`wrong result from ${r.worker}`);
        ok++;
        window.set(r.worker, (window.get(r.worker) ?? 0) + 1);
        lastSeen.set(r.worker, performance.now());
        const m = perPhase.get(startedIn) ?? new Map<string, number>();
        perPhase.set(startedIn, m);
        m.set(r.worker, (m.get(r.worker) ?? 0) + 1);
      } catch (e) {
        failed++;
        if (failures.length < 5) failures.push(String(e));
      }
      n += concurrency;
    }
  })).then(() => caller.close());
  let lastTick = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    const secs = (now - lastTick) / 1000;
    lastTick = now;
    const total = [...window.values()].reduce((a, b) => a + b, 0);
    const cols = WORKERS.map((w) => `${w.id} ${String(window.get(w.id) ?? 0).padStart(5)}`);
    const s = director.client.stats();
    log(
      `${String(Math.round(total / secs)).padStart(6)} req/s | ${cols.join(" | ")} | ` +
        `failed ${failed === 0 ? green("0") : red(String(failed))} | failovers ${s.retries}`,
    );
    window = new Map();
  }, 1000);

  try {
    heading(`2. steady load for ${phaseMs / 1000} s (client → director over QUIC → workers)`);
    await new Promise((r) => setTimeout(r, phaseMs));

    heading(`3. SIGKILL ${VICTIM} mid-load`);
    const victim = procs.get(VICTIM)!;
    const killedAt = performance.now();
    await victim.kill();
    phase = "after kill";
    log(
      `${red("killed")} ${VICTIM} (pid ${victim.child.pid}) — no leave message, gossip must notice`,
    );
    await waitUntil(
      () =>
        seen.some((e) =>
          e.at > killedAt && e.event.type === "NodeFailed" && e.event.node.id === VICTIM
        ),
      `NodeFailed for ${VICTIM}`,
    );
    const detectedMs = seen.find((e) => e.at > killedAt && e.event.type === "NodeFailed")!.at -
      killedAt;
    log(
      `NodeFailed for ${VICTIM} ${
        Math.round(detectedMs)
      } ms after the kill; its connection was evicted`,
    );
    await new Promise((r) => setTimeout(r, phaseMs));

    heading(`4. restart ${VICTIM}`);
    const restartAt = performance.now();
    const again = await WorkerProcess.spawn({
      id: VICTIM,
      tags: WORKERS.find((w) => w.id === VICTIM)!.tags,
      seeds: [director.gossipAddr],
      caFile,
      delayMs: 2,
    });
    procs.set(VICTIM, again);
    phase = "after rejoin";
    await waitUntil(
      () => (perPhase.get("after rejoin")?.get(VICTIM) ?? 0) > 0,
      `traffic to the restarted ${VICTIM}`,
    );
    const joined = seen.find((e) =>
      e.at > restartAt && e.event.type !== "NodeFailed" && "node" in e.event &&
      e.event.node.id === VICTIM
    );
    const trafficMs = lastSeen.get(VICTIM)! - (joined?.at ?? restartAt);
    log(
      `${green(VICTIM)} is back (pid ${again.child.pid}) and serving: first response ${
        Math.max(0, Math.round(trafficMs))
      } ms after it rejoined`,
    );
    await new Promise((r) => setTimeout(r, phaseMs));

    loadStop = true;
    await loadDone;
    clearInterval(ticker);

    heading("5. workers leave gracefully");
    const stopAt = performance.now();
    for (const p of procs.values()) await p.stop(); // SIGTERM → node.leave()
    procs.clear();
    const leftCount = () =>
      seen.filter((e) => e.at >= stopAt && e.event.type === "NodeLeft").length;
    await waitUntil(() => leftCount() >= WORKERS.length, "every NodeLeft", 2500).catch(() => {});
    log(`${leftCount()} of ${WORKERS.length} workers seen leaving gracefully`);

    // ---- summary ---------------------------------------------------------------------------------
    heading("summary");
    const phases: Phase[] = ["steady", "after kill", "after rejoin"];
    const rows = WORKERS.map((w) => [
      w.id,
      ...phases.map((p) => String(perPhase.get(p)?.get(w.id) ?? 0)),
      String(phases.reduce((a, p) => a + (perPhase.get(p)?.get(w.id) ?? 0), 0)),
    ]);
    const header = ["worker", ...phases, "total"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) =>
      "| " +
      cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ") +
      " |";
    console.log(line(header));
    console.log(
      "|" +
        widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") +
        "|",
    );
    for (const r of rows) console.log(line(r));
    const s = director.client.stats();
    const summary: [string, string][] = [
      ["strategy", strategy],
      ["calls completed", String(ok)],
      ["failed idempotent calls", failed === 0 ? green("0") : red(String(failed))],
      ["failovers (retries)", String(s.retries)],
      ["connections evicted (NodeFailed/Left)", String(s.evictions)],
      ["outlier ejections", String(s.ejections)],
      [`${VICTIM} failure detected after`, `${Math.round(detectedMs)} ms`],
      [`${VICTIM} traffic after rejoin`, `${Math.max(0, Math.round(trafficMs))} ms`],
      ["wall time", `${((performance.now() - t0) / 1000).toFixed(1)} s`],
    ];
    console.log();
    for (const [k, v] of summary) console.log(`${k.padEnd(36)} ${v}`);
    for (const f of failures) console.log(red(`failure: ${f}`));
    exitCode = failed === 0 ? 0 : 1;
    console.log(exitCode === 0 ? green("\nOK: no idempotent call failed") : red("\nFAILED"));
  } finally {
    clearInterval(ticker);
  }
} catch (e) {
  console.error(red(`demo failed: ${e instanceof Error ? e.stack : e}`));
} finally {
  loadStop = true;
  await loadDone.catch(() => {});
  await Promise.all([...procs.values()].map((p) => p.stop()));
  await events.return?.();
  await front.close();
  await director.stop();
  await eventLoop.catch(() => {});
  await Deno.remove(caFile).catch(() => {});
}
Deno.exit(exitCode);
