/**
 * A/B and profiling harness for the "fanout" topology: 3 worker `Node` processes (TCP lanes
 * accepted) and one caller process, 64 B echo at 64 in flight (`--in-flight N`), several
 * rounds; prints each round's calls/s and the caller's and workers' CPU per call. Run it on two
 * trees (e.g. with and without a change, `git stash` in between) to compare; add `--cpu-prof` to
 * write the caller's V8 CPU profile, or `--worker-cpu-prof` for the workers', to `--prof-dir`
 * (default `./prof`).
 *
 * ```sh
 * deno run -A bench/fanout_profile.ts cluster3tcp --rounds 5
 * deno run -A bench/fanout_profile.ts cluster3 --cpu-prof
 * deno run -A bench/fanout_profile.ts cluster1tcp --in-flight 1 --cpu-prof
 * ```
 *
 * The JSON line's `calls` counts every call the caller made (warm-up included): the divisor for
 * `bench/cpuprofile_diff.ts`, which compares two profiles per call.
 *
 * Systems: `cluster3` (ClusterClient over the 3 workers, QUIC), `cluster3tcp` (the same over TCP
 * lanes), `cluster1tcp` (the same pinned to one worker by a filter), `direct` (an `RpcClient` with
 * TCP lanes to one worker), `direct3`/`direct3tcp` (an `RpcClient` per worker, round-robin), `rawtls3` (the raw TLS framed
 * echo ceiling over 3 server processes), `raw3` (the same over QUIC, the ceiling).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Proc, processCpuUs } from "./proc.ts";
import { benchCredentials, type WorkerReady } from "./fanout.ts";
import { median } from "./table.ts";

const { positionals, values: args } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    rounds: { type: "string", default: "5" },
    "round-ms": { type: "string", default: "1000" },
    "cpu-prof": { type: "boolean", default: false },
    "worker-cpu-prof": { type: "boolean", default: false },
    "prof-dir": { type: "string", default: "prof" },
    "in-flight": { type: "string", default: "64" },
  },
});
const system = positionals[0] ?? "cluster3tcp";
const inFlight = Number(args["in-flight"]);
const SYSTEMS = [
  "cluster3",
  "cluster3tcp",
  "cluster1tcp",
  "direct",
  "direct3",
  "direct3tcp",
  "rawtls3",
  "raw3",
];
if (!SYSTEMS.includes(system)) {
  throw new Error(`system must be one of ${SYSTEMS.join(", ")}, not '${system}'`);
}
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const here = (p: string) => new URL(p, import.meta.url).pathname;
const prof = (on: boolean) => on ? ["--cpu-prof", `--cpu-prof-dir=${args["prof-dir"]}`] : [];
const deno = <R>(flags: string[], script: string, argv: string[], label: string, env = {}) =>
  Proc.start<R>(
    Deno.execPath(),
    ["run", "-A", "--quiet", ...flags, "--config", CONFIG, script, ...argv],
    label,
    env,
  );

const { caFile, tlsEnv } = await benchCredentials();
const procs: Proc<unknown>[] = [];
const servers: Proc<unknown>[] = []; // raw servers do not read stdin: killed, not stopped
try {
  let workerPids: number[];
  let argv: string[];
  if (system === "rawtls3" || system === "raw3") {
    const tls = system === "rawtls3";
    for (let i = 0; i < 3; i++) {
      servers.push(
        await deno<string>(
          [],
          here("./rpc.ts"),
          [tls ? "serve-raw-tls" : "serve-raw"],
          "raw",
          tlsEnv,
        ),
      );
    }
    workerPids = servers.map((s) => s.pid);
    argv = [tls ? "rawtls" : "raw", ...servers.flatMap((s) => ["--port", String(s.ready)])];
  } else {
    const workers: Proc<WorkerReady>[] = [];
    for (const id of ["w1", "w2", "w3"]) {
      const seed = workers.length ? ["--seed", workers[0].ready.gossipAddr] : [];
      workers.push(
        await deno<WorkerReady>(
          prof(args["worker-cpu-prof"]),
          here("./fanout_worker.ts"),
          ["--id", id, "--ca", caFile, "--tcp-lanes", ...seed],
          id,
        ),
      );
    }
    procs.push(...workers);
    workerPids = workers.map((w) => w.pid);
    argv = system === "direct"
      ? ["direct", "--addr", workers[0].ready.rpcAddr, "--ca", caFile, "--tcp-lanes"]
      : system.startsWith("direct3")
      ? ["direct", "--ca", caFile, ...workers.flatMap((w) => ["--addr", w.ready.rpcAddr])].concat(
        system === "direct3tcp" ? ["--tcp-lanes"] : [],
      )
      : system === "cluster1tcp"
      ? ["cluster", "--seed", workers[0].ready.gossipAddr, "--ca", caFile, "--tcp-lanes"].concat(
        ["--filter", "name=w1", "--workers", "1"],
      )
      : ["cluster", "--seed", workers[0].ready.gossipAddr, "--ca", caFile, "--workers", "3"].concat(
        system === "cluster3tcp" ? ["--tcp-lanes"] : [],
      );
    if (system === "direct" || system === "cluster1tcp") workerPids = [workers[0].pid];
  }
  const caller = await deno<Record<string, unknown>>(
    prof(args["cpu-prof"]),
    here("./fanout_driver.ts"),
    argv,
    "caller",
    tlsEnv,
  );
  procs.push(caller);
  const ms = Number(args["round-ms"]);
  // Every call the caller made, warm-up included: what a CPU profile's time is divided by
  // (`bench/cpuprofile_diff.ts`).
  let calls = (await caller.request<{ done: number }>({ run: "echo", inFlight, ms })).done;
  const rounds: { rate: number; callerUs: number; workerUs: number }[] = [];
  for (let i = 0; i < Number(args.rounds); i++) {
    const workers = () => workerPids.reduce((a, p) => a + processCpuUs(p), 0);
    const c0 = processCpuUs(caller.pid), w0 = workers();
    const r = await caller.request<{ rate: number; done: number }>({
      run: "echo",
      inFlight,
      ms,
    });
    calls += r.done;
    rounds.push({
      rate: Math.round(r.rate),
      callerUs: (processCpuUs(caller.pid) - c0) / r.done,
      workerUs: (workers() - w0) / r.done,
    });
  }
  const med = (f: (r: typeof rounds[number]) => number) => median(rounds.map(f));
  console.log(JSON.stringify({
    system,
    calls,
    rate: med((r) => r.rate),
    callerUs: +med((r) => r.callerUs).toFixed(2),
    workerUs: +med((r) => r.workerUs).toFixed(2),
    rounds,
  }));
} finally {
  // The caller first, with time to leave and to write its profile; then the workers.
  const caller = procs.pop();
  if (caller) await caller.stop(20_000);
  await Promise.all(procs.map((p) => p.stop(args["worker-cpu-prof"] ? 20_000 : 5000)));
  await Promise.all(servers.map((p) => p.kill()));
  await Deno.remove(caFile).catch(() => {});
}
