/**
 * `deno task soak`: three worker processes and a caller under steady idempotent load for a long
 * time, then a churn phase (workers killed with SIGKILL and restarted at once at the same address,
 * stopped with SIGTERM and restarted, replaced by a new id on the same ports). Reports calls, failed
 * calls by code, and resident memory growth of the caller and of each worker that lived through the
 * steady phase. Exits 1 when a call failed or the caller grew by more than `--max-growth-mib`.
 *
 * ```sh
 * deno task soak                                      # 10 min steady + 3 min churn
 * deno task soak -- --minutes 1 --churn-minutes 0.5   # a short run
 * deno task soak -- --json                            # one JSON object on stdout
 * ```
 *
 * The caller runs in this process (a `Node` using `callWorker`); each worker is its own OS process
 * (`examples/demo_worker.ts`), as users deploy them.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createDevCa, Node, RpcError } from "../mod.ts";
import { WorkerProcess, writeCaFile } from "../examples/worker_process.ts";

const { values: args } = parseArgs({
  args: Deno.args.filter((a) => a !== "--"),
  options: {
    minutes: { type: "string", default: "10" },
    "churn-minutes": { type: "string", default: "3" },
    concurrency: { type: "string", default: "32" },
    "timeout-ms": { type: "string", default: "5000" },
    "max-growth-mib": { type: "string", default: "64" },
    json: { type: "boolean", default: false },
  },
});
const steadyMs = Number(args.minutes) * 60_000;
const churnMs = Number(args["churn-minutes"]) * 60_000;
const concurrency = Number(args.concurrency);
const timeoutMs = Number(args["timeout-ms"]);
const maxGrowthMiB = Number(args["max-growth-mib"]);
for (
  const [name, v] of Object.entries({ steadyMs, churnMs, concurrency, timeoutMs, maxGrowthMiB })
) {
  if (!Number.isFinite(v) || v < 0) {
    console.error(`soak: --${name} must be a non-negative number`);
    Deno.exit(2);
  }
}

const log = (msg: string) => {
  if (!args.json) console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

/** Resident memory of a process in bytes, from /proc (Linux); undefined when it is gone. */
function rssOf(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

const ca = await createDevCa();
const caFile = await writeCaFile(ca);
const caller = await Node.start({ id: "soak-caller", profile: "LOCAL", devCa: ca });
const workers = new Map<string, WorkerProcess>();
const spawn = async (id: string, ports?: { rpcPort: number; gossipPort: number }) => {
  const w = await WorkerProcess.spawn({
    id,
    seeds: [caller.gossipAddr],
    caFile,
    delayMs: 0,
    ...ports,
  });
  workers.set(id, w);
  return w;
};
const portsOf = (w: WorkerProcess) => ({
  rpcPort: Number(w.info.rpcAddr.slice(w.info.rpcAddr.lastIndexOf(":") + 1)),
  gossipPort: Number(w.info.gossipAddr.slice(w.info.gossipAddr.lastIndexOf(":") + 1)),
});

let ok = 0;
const failedByCode = new Map<string, number>();
const failureSamples: string[] = [];
let stop = false;
let exitCode = 0;
const report: Record<string, unknown> = {
  steadyMinutes: steadyMs / 60_000,
  churnMinutes: churnMs / 60_000,
  concurrency,
  timeoutMs,
};
try {
  for (const id of ["w1", "w2", "w3"]) await spawn(id);
  const until = performance.now() + 30_000;
  while (caller.registry.workers("role=worker").length < 3) {
    if (performance.now() > until) throw new Error("three workers did not join within 30 s");
    await sleep(50);
  }
  log(
    `3 workers joined; load: ${concurrency} idempotent calls in flight, ${timeoutMs} ms deadline`,
  );

  const load = Promise.all(Array.from({ length: concurrency }, async (_, i) => {
    let n = i;
    while (!stop) {
      try {
        const r = await caller.client.callWorker<{ result: number }>("compute", { n }, {
          filter: "role=worker",
          idempotent: true,
          timeoutMs,
        });
        if (r.result !== n * n) throw new RpcError("internal", `wrong result for ${n}`);
        ok++;
      } catch (e) {
        const code = e instanceof RpcError ? e.code : "other";
        failedByCode.set(code, (failedByCode.get(code) ?? 0) + 1);
        if (failureSamples.length < 5) failureSamples.push(String(e));
      }
      n += concurrency;
    }
  }));

  // Steady phase: memory sampled after a warm-up (a tenth of the phase, 5–60 s), then at the end.
  const warmMs = Math.min(60_000, Math.max(5_000, steadyMs / 10));
  await sleep(Math.min(warmMs, steadyMs));
  const pids = new Map([...workers].map(([id, w]) => [id, w.child.pid]));
  const before = {
    caller: Deno.memoryUsage().rss,
    workers: new Map([...pids].map(([id, pid]) => [id, rssOf(pid)])),
  };
  const okAtWarm = ok;
  const steadyStart = performance.now();
  let last = performance.now();
  let lastOk = ok;
  while (performance.now() - steadyStart < steadyMs - warmMs) {
    await sleep(
      Math.min(10_000, Math.max(0, steadyMs - warmMs - (performance.now() - steadyStart))),
    );
    const now = performance.now();
    log(
      `steady: ${Math.round((ok - lastOk) / ((now - last) / 1000))} calls/s, caller rss ${
        (Deno.memoryUsage().rss / MiB).toFixed(0)
      } MiB, failed ${[...failedByCode.values()].reduce((a, b) => a + b, 0)}`,
    );
    last = now;
    lastOk = ok;
  }
  const steadySecs = (performance.now() - steadyStart) / 1000;
  const callerGrowth = (Deno.memoryUsage().rss - before.caller) / MiB;
  const workerGrowth: Record<string, number> = {};
  for (const [id, pid] of pids) {
    const a = before.workers.get(id), b = rssOf(pid);
    if (a !== undefined && b !== undefined) workerGrowth[id] = Number(((b - a) / MiB).toFixed(1));
  }
  const steadyFailed = [...failedByCode.values()].reduce((a, b) => a + b, 0);
  Object.assign(report, {
    steadyCallsPerSec: Math.round((ok - okAtWarm) / Math.max(steadySecs, 1e-3)),
    steadyFailed,
    callerRssGrowthMiB: Number(callerGrowth.toFixed(1)),
    workerRssGrowthMiB: workerGrowth,
  });
  log(
    `steady phase done: caller grew ${callerGrowth.toFixed(1)} MiB; workers ${
      JSON.stringify(workerGrowth)
    } MiB`,
  );

  // Churn phase: one disruption every 5 s, rotating kinds and workers.
  const churnStart = performance.now();
  const okAtChurn = ok;
  let round = 0;
  const kinds = ["kill -9 + restart same address", "SIGTERM + restart", "replace with a new id"];
  while (performance.now() - churnStart < churnMs) {
    const kind = kinds[round % kinds.length];
    const ids = [...workers.keys()].sort();
    const id = ids[round % ids.length];
    const w = workers.get(id)!;
    const ports = portsOf(w);
    workers.delete(id);
    if (kind === "SIGTERM + restart") await w.stop();
    else await w.kill();
    const next = kind === "replace with a new id" ? `${id.split("-")[0]}-r${round}` : id;
    await spawn(next, kind === "SIGTERM + restart" ? undefined : ports);
    log(`churn ${round}: ${kind} (${id} → ${next})`);
    round++;
    await sleep(Math.min(5_000, Math.max(0, churnMs - (performance.now() - churnStart))));
  }
  stop = true;
  await load;
  const totalFailed = [...failedByCode.values()].reduce((a, b) => a + b, 0);
  Object.assign(report, {
    churnRounds: round,
    churnCalls: ok - okAtChurn,
    churnFailed: totalFailed - steadyFailed,
    calls: ok,
    failed: totalFailed,
    failedByCode: Object.fromEntries(failedByCode),
    failureSamples,
    callerRssEndMiB: Number((Deno.memoryUsage().rss / MiB).toFixed(1)),
    perWorkerStatsEntries: Object.keys(caller.client.stats().perWorker ?? {}).length,
  });
  if (totalFailed > 0 || callerGrowth > maxGrowthMiB) exitCode = 1;
} catch (e) {
  report.error = String(e);
  exitCode = 1;
} finally {
  stop = true;
  await Promise.all([...workers.values()].map((w) => w.kill()));
  await caller.leave();
  await Deno.remove(caFile).catch(() => {});
}
if (args.json) console.log(JSON.stringify(report));
else {
  for (const [k, v] of Object.entries(report)) {
    console.log(`${k.padEnd(24)} ${typeof v === "object" ? JSON.stringify(v) : v}`);
  }
}
Deno.exit(exitCode);
