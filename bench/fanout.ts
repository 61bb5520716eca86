/**
 * Bench section "fanout": one caller spreading calls over worker PROCESSES, the topology users
 * deploy, against the alternatives, every system in its own processes on loopback:
 *
 * - `ClusterClient` in a caller `Node` (`callWorker`, default strategy) → 3 worker `Node`
 *   processes (`bench/fanout_worker.ts`);
 * - the same caller pinned to one worker (`filter name=w1`): its CPU per call over one connection;
 * - a direct `RpcClient` → one worker's `RpcServer`;
 * - the ceiling: a raw Deno QUIC framed echo from one endpoint to 3 (and 1) raw echo server
 *   processes (`bench/raw_fanout.ts`, `bench/rpc.ts serve-raw`), and the same over TLS/TCP
 *   (`serve-raw-tls`), the ceiling of TCP lanes; 3 against 1 server is what spreading costs the
 *   transport itself;
 * - moleculer 0.14 with 3 workers on its TCP transporter, and @grpc/grpc-js round robin over
 *   3 servers, both under Node (`bench/node/fanout_driver.mjs`).
 *
 * Every caller is its own process (`bench/fanout_driver.ts`, or the Node driver) answering
 * `{run, inFlight, ms}` commands, so the rounds of every system interleave (order reversed every
 * other round; at 1 in flight each round is 4 shorter slices, `FANOUT_BENCH_SLICES`) and each
 * ratio is the median of per-round (per-slice) ratios. CPU per call is read from /proc
 * for the caller and the worker processes of each system.
 *
 * Then: a worker added under load (48 `hold` calls in flight over 3 workers) — how long from its
 * ready line until it serves its share; and linear scaling (`bench/scale.ts`).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { createDevCa, issueDevCertificate, MAX_TIE_STREAK } from "../mod.ts";
import { writeCaFile } from "../examples/worker_process.ts";
import { Proc, processCpuUs } from "./proc.ts";
import { type BenchRow, type BenchSection, median } from "./table.ts";

const ROUND_MS = Number(Deno.env.get("FANOUT_BENCH_MS") ?? 500);
const ROUNDS = Number(Deno.env.get("FANOUT_BENCH_ROUNDS") ?? 7);
const WARMUP_ROUNDS = 3;
// Each round at 1 in flight is this many shorter rounds (see `interleave`).
const ONE_IN_FLIGHT_SLICES = Number(Deno.env.get("FANOUT_BENCH_SLICES") ?? 4);
const VERBOSE = Deno.env.get("BENCH_VERBOSE") === "1";
const here = (p: string) => new URL(p, import.meta.url).pathname;
export const NODE_DIR: string = here("./node/");

/** Result of one `run` command. */
export interface RunResult {
  done: number;
  seconds: number;
  rate: number;
  p50us: number;
  p99us: number;
  errors: number;
  perWorker?: Record<string, number>;
  windows?: { at: number; counts: Record<string, number> }[];
}

/** A system under test: its caller process and the processes it calls. */
export interface System {
  name: string;
  caller: Proc;
  workerPids: number[];
}

/** Ready line of a worker process. */
export interface WorkerReady {
  id: string;
  rpcAddr: string;
  gossipAddr: string;
}

/**
 * Starts `n` worker `Node` processes; the first is the others' seed. `tree` is the checkout whose
 * worker runs (default this one; `bench/fanout_ab.ts --workers-too` runs another's).
 */
export async function startWorkers(
  ids: string[],
  caFile: string,
  seed?: string,
  extra: string[] = [],
  tree?: URL,
): Promise<Proc<WorkerReady>[]> {
  const script = tree
    ? new URL("bench/fanout_worker.ts", tree).pathname
    : here("./fanout_worker.ts");
  const config = tree ? new URL("deno.json", tree).pathname : undefined;
  const procs: Proc<WorkerReady>[] = [];
  try {
    const args = (id: string, s?: string) => [
      "--id",
      id,
      "--ca",
      caFile,
      ...(s ? ["--seed", s] : []),
      ...extra,
    ];
    let first = seed;
    if (!first) {
      procs.push(
        await Proc.deno<WorkerReady>(
          script,
          args(ids[0]),
          `worker ${ids[0]}`,
          undefined,
          [],
          config,
        ),
      );
      first = procs[0].ready.gossipAddr;
    }
    const rest = seed ? ids : ids.slice(1);
    // In parallel: 16 workers started one by one would take most of a minute.
    const started = await Promise.allSettled(
      rest.map((id) =>
        Proc.deno<WorkerReady>(script, args(id, first), `worker ${id}`, undefined, [], config)
      ),
    );
    for (const s of started) if (s.status === "fulfilled") procs.push(s.value);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return procs;
  } catch (e) {
    await Promise.all(procs.map((p) => p.kill()));
    throw e;
  }
}

/** Installs the Node baselines (moleculer, grpc-js) once; an error message when it cannot. */
export async function ensureNodeBaselines(): Promise<string | undefined> {
  try {
    if (
      existsSync(`${NODE_DIR}node_modules/moleculer`) &&
      existsSync(`${NODE_DIR}node_modules/@grpc/grpc-js`)
    ) return undefined;
    const npm = await new Deno.Command("npm", {
      args: ["ci", "--prefix", NODE_DIR, "--no-audit", "--no-fund"],
      stdout: "null",
      stderr: "inherit",
    }).output();
    return npm.success ? undefined : "npm ci failed";
  } catch (e) {
    return `not run: ${(e as Error).message}`;
  }
}

/** Starts a Node.js driver (`moleculer` or `grpc`) with its own worker processes. */
export async function startNodeSystem(
  system: "moleculer" | "grpc",
  workers: number,
  env: Record<string, string>,
  extra: string[] = [],
): Promise<System & { version: string }> {
  const caller = await Proc.start<
    { callerPid: number; workerPids: number[]; version: string }
  >(
    "node",
    [`${NODE_DIR}fanout_driver.mjs`, system, "--workers", String(workers), ...extra],
    `${system} driver`,
    env,
  );
  return {
    name: system,
    caller: caller as unknown as Proc,
    workerPids: caller.ready.workerPids,
    version: caller.ready.version,
  };
}

/** CPU of a system's processes so far, µs. */
function cpu(s: System): { caller: number; workers: number } {
  let workers = 0;
  for (const pid of s.workerPids) workers += processCpuUs(pid);
  return { caller: processCpuUs(s.caller.pid), workers };
}

/** One measured round of one system. */
export interface Round extends RunResult {
  callerCpuPerCall: number;
  workerCpuPerCall: number;
}

/** Runs one round on `s` and adds the CPU its processes spent per call. */
export async function round(
  s: System,
  command: { run: "echo" | "hold"; inFlight: number; ms: number; windowMs?: number },
): Promise<Round> {
  const c0 = cpu(s);
  if (VERBOSE) console.error(`  ${s.name} ${JSON.stringify(command)}`);
  const r = await s.caller.request<RunResult>(command, command.ms + 60_000);
  const c1 = cpu(s);
  return {
    ...r,
    callerCpuPerCall: (c1.caller - c0.caller) / r.done,
    workerCpuPerCall: (c1.workers - c0.workers) / r.done,
  };
}

/**
 * Runs every system `rounds` times at each load, interleaved. A load with `slices` k > 1 runs k
 * rounds of `ms / k` each per round instead of one, the order of the systems reversed from one
 * slice to the next: at one call in flight the p50 of a round moves by tens of µs with the
 * machine's state (where the scheduler put the processes), so systems compared at that load
 * need more, shorter rounds that sit closer together in time.
 */
export async function interleave(
  systems: System[],
  loads: { run: "echo" | "hold"; inFlight: number; slices?: number }[],
  rounds: number,
  ms: number,
  warmupRounds = WARMUP_ROUNDS,
): Promise<Map<string, Round[]>> {
  const out = new Map<string, Round[]>();
  const key = (s: System, l: { inFlight: number }) => `${s.name}@${l.inFlight}`;
  for (const s of systems) {
    for (const l of loads) {
      out.set(key(s, l), []);
      // Warm-up: JIT and connection windows; the Node baselines need seconds to reach speed.
      for (let i = 0; i < warmupRounds; i++) await round(s, { ...l, ms });
    }
  }
  const reversed = [...systems].reverse();
  for (let r = 0; r < rounds; r++) {
    for (const l of loads) {
      const slices = l.slices ?? 1;
      for (let k = 0; k < slices; k++) {
        const order = (r * slices + k) % 2 ? reversed : systems;
        const command = { run: l.run, inFlight: l.inFlight, ms: ms / slices };
        for (const s of order) out.get(key(s, l))!.push(await round(s, command));
      }
    }
  }
  return out;
}

/** Median of per-round ratios a/b. */
export function ratio(a: Round[], b: Round[], f: (r: Round) => number = (r) => r.rate): number {
  return median(a.map((x, i) => f(x) / f(b[i])));
}

const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(", ");

/**
 * A throwaway CA for a bench run: its certificate in a file (for worker `Node`s, `--ca`) and a
 * leaf's certificate and key in the environment the raw servers and drivers read.
 */
export async function benchCredentials(): Promise<
  { caFile: string; tlsEnv: Record<string, string> }
> {
  const ca = await createDevCa();
  const caFile = await writeCaFile(ca);
  const leaf = await issueDevCertificate(ca);
  return {
    caFile,
    tlsEnv: { RPC_BENCH_CERT: leaf.certPem, RPC_BENCH_KEY: leaf.keyPem, RPC_BENCH_CA: ca.certPem },
  };
}

/** Runs the section. */
export async function run(): Promise<BenchSection> {
  const { caFile, tlsEnv } = await benchCredentials();
  const procs: Proc<unknown>[] = [];
  const kill: Proc<unknown>[] = []; // processes that do not read stdin
  const rows: BenchRow[] = [];
  try {
    // The workers accept TCP lanes; the QUIC systems' clients simply do not ask for them.
    const workers = await startWorkers(["w1", "w2", "w3"], caFile, undefined, ["--tcp-lanes"]);
    procs.push(...workers);
    const seed = workers[0].ready.gossipAddr;
    const workerPids = workers.map((w) => w.pid);
    const raws: Proc<string>[] = [];
    for (let i = 0; i < 3; i++) {
      raws.push(await Proc.deno<string>(here("./rpc.ts"), ["serve-raw"], "raw server", tlsEnv));
    }
    const rawTls: Proc<string>[] = [];
    for (let i = 0; i < 3; i++) {
      rawTls.push(
        await Proc.deno<string>(here("./rpc.ts"), ["serve-raw-tls"], "raw TLS server", tlsEnv),
      );
    }
    kill.push(...raws, ...rawTls);
    const driver = here("./fanout_driver.ts");
    const deno = async (name: string, args: string[], pids: number[]): Promise<System> => {
      const caller = await Proc.deno<Record<string, unknown>>(
        driver,
        args,
        `${name} driver`,
        tlsEnv,
      );
      procs.push(caller);
      return { name, caller, workerPids: pids };
    };
    // One RpcClient per worker, with the cluster client's tie streak: spreading without the
    // cluster layer.
    const direct3 = (name: string, extra: string[]) =>
      deno(name, [
        "direct",
        ...workers.flatMap((w) => ["--addr", w.ready.rpcAddr]),
        "--ca",
        caFile,
        "--tie-streak",
        String(MAX_TIE_STREAK),
        ...extra,
      ], workerPids);
    const only = Deno.env.get("FANOUT_SYSTEMS")?.split(","); // diagnostics: a subset
    const systems: System[] = [
      await deno(
        "raw3",
        ["raw", ...raws.flatMap((r) => ["--port", String(r.ready)])],
        raws.map((r) => r.pid),
      ),
      await deno("raw1", ["raw", "--port", String(raws[0].ready)], [raws[0].pid]),
      await deno(
        "rawtls3",
        ["rawtls", ...rawTls.flatMap((r) => ["--port", String(r.ready)])],
        rawTls.map((r) => r.pid),
      ),
      await deno("rawtls1", ["rawtls", "--port", String(rawTls[0].ready)], [rawTls[0].pid]),
      await deno("direct", ["direct", "--addr", workers[0].ready.rpcAddr, "--ca", caFile], [
        workerPids[0],
      ]),
      await direct3("direct3", []),
      await deno(
        "cluster3",
        ["cluster", "--seed", seed, "--ca", caFile, "--workers", "3"],
        workerPids,
      ),
      await deno(
        "cluster1",
        ["cluster", "--seed", seed, "--ca", caFile, "--filter", "name=w1"],
        [workerPids[0]],
      ),
      await deno(
        "directtcp",
        ["direct", "--addr", workers[0].ready.rpcAddr, "--ca", caFile, "--tcp-lanes"],
        [workerPids[0]],
      ),
      await direct3("direct3tcp", ["--tcp-lanes"]),
      await deno(
        "cluster3tcp",
        ["cluster", "--seed", seed, "--ca", caFile, "--workers", "3", "--tcp-lanes"],
        workerPids,
      ),
      await deno(
        "cluster1tcp",
        ["cluster", "--seed", seed, "--ca", caFile, "--filter", "name=w1", "--tcp-lanes"],
        [workerPids[0]],
      ),
    ];
    if (only) {
      for (const s of systems.filter((s) => !only.includes(s.name))) await s.caller.stop(3000);
      systems.splice(0, systems.length, ...systems.filter((s) => only.includes(s.name)));
    }
    let nodeProblem = only && !only.includes("moleculer")
      ? "not selected"
      : await ensureNodeBaselines();
    const versions: Record<string, string> = {};
    for (const sys of nodeProblem ? [] : ["moleculer", "grpc"] as const) {
      try {
        const s = await startNodeSystem(sys, 3, tlsEnv);
        procs.push(s.caller);
        versions[sys] = s.version;
        systems.push(s);
      } catch (e) {
        nodeProblem = `${sys}: ${(e as Error).message}`;
      }
    }
    const loads = [
      { run: "echo" as const, inFlight: 64 },
      { run: "echo" as const, inFlight: 1, slices: ONE_IN_FLIGHT_SLICES },
    ];
    const m = await interleave(systems, loads, ROUNDS, ROUND_MS);
    const at = (name: string, k: number) => m.get(`${name}@${k}`) ?? [];
    const label: Record<string, string> = {
      raw3: "raw QUIC framed echo → 3 server processes (ceiling)",
      raw1: "raw QUIC framed echo → 1 server process",
      rawtls3: "raw TLS/TCP framed echo → 3 server processes (ceiling of TCP lanes)",
      rawtls1: "raw TLS/TCP framed echo → 1 server process",
      direct: "direct RpcClient → 1 worker's RpcServer",
      cluster3: "ClusterClient.callWorker in a Node → 3 worker Node processes",
      cluster1: "ClusterClient.callWorker → 1 worker Node (filter name=w1)",
      directtcp: "direct RpcClient, TCP lanes → 1 worker's RpcServer",
      direct3: "3 direct RpcClients → 3 worker processes, close to the ClusterClient's policy " +
        "(fewest in flight, ties to the last pick for 1023 picks)",
      direct3tcp: "3 direct RpcClients, TCP lanes → 3 worker processes, the same policy",
      cluster3tcp: "ClusterClient.callWorker, TCP lanes → 3 worker Node processes",
      cluster1tcp: "ClusterClient.callWorker, TCP lanes → 1 worker Node (filter name=w1)",
      moleculer: `moleculer ${versions.moleculer ?? ""} → 3 worker processes (TCP transporter)`,
      grpc: `@grpc/grpc-js ${versions.grpc ?? ""} round robin → 3 server processes`,
    };
    for (const s of systems) {
      const r64 = at(s.name, 64);
      const r1 = at(s.name, 1);
      rows.push({
        name: `${label[s.name]}, 64 B echo, 64 in flight`,
        value: median(r64.map((r) => r.rate)),
        unit: "req/s",
        note: `p50 ${median(r64.map((r) => r.p50us)).toFixed(0)} µs, p99 ` +
          `${median(r64.map((r) => r.p99us)).toFixed(0)} µs; CPU µs per call: caller ` +
          `${median(r64.map((r) => r.callerCpuPerCall)).toFixed(1)}, workers ` +
          `${median(r64.map((r) => r.workerCpuPerCall)).toFixed(1)}; errors ` +
          `${r64.reduce((a, r) => a + r.errors, 0)}`,
      });
      rows.push({
        name: `${label[s.name]}, 1 in flight, p50`,
        value: median(r1.map((r) => r.p50us)),
        unit: "µs",
        note: `${median(r1.map((r) => r.rate)).toFixed(0)} req/s; p99 ` +
          `${median(r1.map((r) => r.p99us)).toFixed(0)} µs; CPU µs per call: caller ` +
          `${median(r1.map((r) => r.callerCpuPerCall)).toFixed(1)}, workers ` +
          `${median(r1.map((r) => r.workerCpuPerCall)).toFixed(1)}`,
      });
    }
    // The targets, for the default transport (QUIC) and with TCP lanes; `t` marks the variant.
    for (const t of ["", "tcp"]) {
      const tag = t ? " [TCP lanes]" : "";
      const c3 = at(`cluster3${t}`, 64);
      if (c3.length === 0) continue;
      // FANOUT_SYSTEMS may select a subset: a row whose baseline did not run is left out.
      const ran = (name: string) => at(name, 64).length > 0;
      const ratioRow = (name: string, b: string, min: number): BenchRow[] => {
        if (!ran(b)) return [];
        const per = c3.map((x, i) => x.rate / at(b, 64)[i]?.rate);
        const value = median(per);
        return [{
          name: name + tag,
          value,
          unit: "x",
          target: `>= ${min}`,
          met: value >= min,
          note: `64 in flight; per-round ${fmt(per)}`,
        }];
      };
      rows.push(
        ...ratioRow(
          "ClusterClient over 3 worker processes / raw QUIC ceiling (3 servers)",
          "raw3",
          0.9,
        ),
        ...ratioRow("ClusterClient over 3 worker processes / direct RpcClient", `direct${t}`, 0.7),
        ...ratioRow("ClusterClient (3) / moleculer (3)", "moleculer", 5),
        ...ratioRow("ClusterClient (3) / grpc-js round robin (3)", "grpc", 25),
      );
      if (ran(`direct${t}`) && ran(`cluster1${t}`)) {
        const diffs = at(`cluster3${t}`, 1).map((x, i) => x.p50us - at(`direct${t}`, 1)[i].p50us);
        const pinned = at(`cluster1${t}`, 1).map((x, i) => x.p50us - at(`direct${t}`, 1)[i].p50us);
        const value = median(diffs);
        rows.push({
          name: "1 in flight: ClusterClient (3) p50 − direct RpcClient p50" + tag,
          value,
          unit: "µs",
          target: "<= 10",
          met: value <= 10,
          note: `per slice (${ONE_IN_FLIGHT_SLICES} per round) ${
            diffs.map((d) => d.toFixed(0)).join(", ")
          }; pinned to the direct ` +
            `client's worker: ${median(pinned).toFixed(0)} µs`,
        });
      }
      // The target's gap split in two: spreading over 3 processes by the same policy with no
      // cluster layer (the RPC layer's and the machine's share), and the cluster layer's own.
      if (ran(`direct${t}`) && ran(`direct3${t}`)) {
        const per = (a: string, b: string) => at(a, 1).map((x, i) => x.p50us - at(b, 1)[i].p50us);
        const spread = per(`direct3${t}`, `direct${t}`);
        const layer = per(`cluster3${t}`, `direct3${t}`);
        rows.push({
          name: "1 in flight: 3 direct RpcClients, same policy, p50 − direct RpcClient p50 " +
            "(spreading without the cluster layer)" + tag,
          value: median(spread),
          unit: "µs",
          note: `per slice ${spread.map((d) => d.toFixed(0)).join(", ")}`,
        }, {
          name: "1 in flight: ClusterClient (3) p50 − 3 direct RpcClients p50 " +
            "(the cluster layer's own)" + tag,
          value: median(layer),
          unit: "µs",
          note: `per slice ${layer.map((d) => d.toFixed(0)).join(", ")}; 64 in flight: ` +
            `ClusterClient (3) / 3 direct RpcClients ${
              ratio(at(`cluster3${t}`, 64), at(`direct3${t}`, 64)).toFixed(2)
            } ×`,
        });
      }
      if (ran(`direct${t}`) && ran(`cluster1${t}`)) {
        const per = c3.map((x, i) =>
          x.callerCpuPerCall / at(`cluster1${t}`, 64)[i].callerCpuPerCall
        );
        const value = median(per);
        rows.push({
          name: "caller CPU per call: ClusterClient over 3 workers / over 1 connection" + tag,
          value,
          unit: "x",
          target: "<= 1.5",
          met: value <= 1.5,
          note: `64 in flight; per-round ${fmt(per)}; direct RpcClient caller ` +
            `${median(at(`direct${t}`, 64).map((r) => r.callerCpuPerCall)).toFixed(1)} µs`,
        });
      }
    }
    // What spreading costs each transport by itself: the floor of the ratios and p50 gaps above.
    for (
      const [three, one, name] of [["raw3", "raw1", "QUIC"], ["rawtls3", "rawtls1", "TLS/TCP"]]
    ) {
      if (at(three, 64).length === 0 || at(one, 64).length === 0) continue;
      const per = at(three, 64).map((x, i) => x.rate / at(one, 64)[i].rate);
      const p50 = at(three, 1).map((x, i) => x.p50us - at(one, 1)[i].p50us);
      const cpu = ratio(at(three, 64), at(one, 64), (r) => r.callerCpuPerCall);
      rows.push({
        name: `raw ${name}: 3 servers / 1 server (what spreading costs the transport itself)`,
        value: median(per),
        unit: "x",
        note: `per-round ${fmt(per)}; 1 in flight p50 3 servers − 1 server: ` +
          `${median(p50).toFixed(0)} µs (per slice ${p50.map((d) => d.toFixed(0)).join(", ")}); ` +
          `caller CPU per call 3 servers / 1 server ${cpu.toFixed(2)}`,
      });
    }
    for (const b of ["raw3", "rawtls3"]) {
      const per = at(b, 64).map((x, i) => x.rate / at("moleculer", 64)[i]?.rate);
      if (!versions.moleculer || per.length === 0) continue;
      rows.push({
        name: `${label[b]} / moleculer (3): the transport's own ceiling against moleculer`,
        value: median(per),
        unit: "x",
        note: `per-round ${fmt(per)}`,
      });
    }
    {
      const per = at("cluster3tcp", 64).map((x, i) => x.rate / at("rawtls3", 64)[i]?.rate);
      if (per.length) {
        rows.push({
          name: "ClusterClient over 3 worker processes [TCP lanes] / raw TLS ceiling (3 servers)",
          value: median(per),
          unit: "x",
          note: `per-round ${fmt(per)}`,
        });
      }
    }
    if (nodeProblem) {
      rows.push({ name: "moleculer, grpc-js baselines", value: NaN, unit: "", note: nodeProblem });
    }

    // A worker added under load: 48 `hold` calls in flight over w1–w3; w4 starts 1 s in.
    const c = systems.find((s) => s.name === "cluster3");
    if (c) {
      const pending = round(c, { run: "hold", inFlight: 48, ms: 4000, windowMs: 100 });
      await new Promise((r) => setTimeout(r, 1000));
      const [w4] = await startWorkers(["w4"], caFile, seed);
      const readyAt = Date.now();
      procs.push(w4);
      const r = await pending;
      const windows = r.windows ?? [];
      // First 100 ms window after w4's ready line in which it served ≥ 80 % of a fair share.
      const share = windows.find((w) => {
        if (w.at + 100 <= readyAt) return false;
        const total = Object.values(w.counts).reduce((a, b) => a + b, 0);
        return (w.counts.w4 ?? 0) >= 0.8 * total / 4;
      });
      const value = share ? share.at + 100 - readyAt : NaN;
      rows.push({
        name:
          "worker added under load: its ready line → first 100 ms window at ≥ 80 % of its share",
        value,
        unit: "ms",
        target: "<= 1000",
        met: value <= 1000,
        note: `48 hold calls (2 ms, 8 at once per worker) in flight over 3 workers, then 4; ` +
          `w4 served ${r.perWorker?.w4 ?? 0} of ${r.done}`,
      });
    }
  } finally {
    await Promise.all(procs.map((p) => (p as Proc).stop(3000)));
    await Promise.all(kill.map((p) => p.kill()));
    await Deno.remove(caFile).catch(() => {});
  }
  return {
    title:
      "fanout: one caller over worker processes (64 B echo; every system in its own processes)",
    rows,
  };
}

if (import.meta.main) {
  const { renderTable } = await import("./table.ts");
  console.log(renderTable([await run()]));
}
