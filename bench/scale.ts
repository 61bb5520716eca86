/**
 * Bench section "scale": does throughput grow linearly with the number of worker processes?
 *
 * Workers of bounded capacity that wait rather than compute (`hold`: 8 calls at once per
 * worker, each holding a 2 ms timer, as a worker waiting on a disk, a GPU or another service
 * does), one caller keeping 16 calls per worker in flight, 1 to 16 worker processes; ours
 * (`callWorker` from a caller `Node`, default strategy) and moleculer 0.14 (TCP transporter).
 *
 * Each system's one-worker setup stays up the whole time and its rounds interleave with the
 * N-worker rounds, so "calls/s over N × the one-worker figure" compares neighbours in time.
 * How much of the bend is the machine (N + 1 processes on 2 cores) shows in the machine's CPU
 * busy share during the rounds, how late the workers' 2 ms timers fired (ours; read from the
 * workers with `callAll("holdStats")`), bare timers in 1 and 16 processes, and above all the
 * raw floor: raw QUIC and raw TLS framed echo servers with the same hold and no RPC layer,
 * measured at every worker count right after ours.
 *
 * @module
 */
import {
  benchCredentials,
  ensureNodeBaselines,
  interleave,
  type Round,
  startNodeSystem,
  startWorkers,
  type System,
} from "./fanout.ts";
import { Proc, processCpuUs } from "./proc.ts";
import { type BenchRow, type BenchSection, median } from "./table.ts";

const COUNTS = (Deno.env.get("SCALE_BENCH_WORKERS") ?? "1,2,4,8,16").split(",").map(Number);
const ROUND_MS = Number(Deno.env.get("SCALE_BENCH_MS") ?? 1000);
const ROUNDS = Number(Deno.env.get("SCALE_BENCH_ROUNDS") ?? 3);
const PER_WORKER = 16;
// How long the worker Nodes of our systems are measured idle before the load rounds.
const IDLE_MS = 2000;
const CORES = navigator.hardwareConcurrency;

/** One of our clusters: `n` worker processes and a caller `Node` process. */
async function ours(
  n: number,
  caFile: string,
  tag: string,
  tcp: boolean,
): Promise<System & { procs: Proc[] }> {
  const ids = Array.from({ length: n }, (_, i) => `${tag}-${i + 1}`);
  const lanes = tcp ? ["--tcp-lanes"] : [];
  const workers = await startWorkers(ids, caFile, undefined, [
    "--tags",
    `role=worker,set=${tag}`,
    ...lanes,
  ]);
  try {
    const caller = await Proc.deno<Record<string, unknown>>(
      new URL("./fanout_driver.ts", import.meta.url).pathname,
      [
        "cluster",
        "--seed",
        workers[0].ready.gossipAddr,
        "--ca",
        caFile,
        "--workers",
        String(n),
        "--filter",
        `set=${tag}`,
        ...lanes,
      ],
      `caller ${tag}`,
    );
    return {
      name: tag,
      caller,
      workerPids: workers.map((w) => w.pid),
      procs: [caller, ...(workers as unknown as Proc[])],
    };
  } catch (e) {
    await Promise.all(workers.map((w) => w.kill()));
    throw e;
  }
}

/**
 * The floor: `n` raw framed echo servers (`bench/rpc.ts serve-raw`/`serve-raw-tls` with the
 * same hold: 8 slots, 2 ms timers) and a raw client fanning out over them, with no RPC, cluster
 * or balancer layer; what this transport and runtime reach in n + 1 processes on this machine.
 */
async function raw(
  n: number,
  tls: boolean,
  tag: string,
  env: Record<string, string>,
): Promise<System & { procs: Proc[] }> {
  const script = new URL("./rpc.ts", import.meta.url).pathname;
  const mode = tls ? "serve-raw-tls" : "serve-raw";
  const started = await Promise.allSettled(
    Array.from(
      { length: n },
      () => Proc.deno<string>(script, [mode, "--hold-ms", "2", "--capacity", "8"], tag, env),
    ),
  );
  const servers = started.filter((s) => s.status === "fulfilled").map((s) => s.value);
  try {
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const caller = await Proc.deno<Record<string, unknown>>(
      new URL("./fanout_driver.ts", import.meta.url).pathname,
      [tls ? "rawtls" : "raw", ...servers.flatMap((p) => ["--port", String(p.ready)])],
      `caller ${tag}`,
      env,
    );
    return {
      name: tag,
      caller,
      workerPids: servers.map((p) => p.pid),
      procs: [caller, ...(servers as unknown as Proc[])],
    };
  } catch (e) {
    await Promise.all(servers.map((p) => p.kill()));
    throw e;
  }
}

/** The machine's CPU busy share over a set of rounds: their processes' CPU / (cores × time). */
function busy(rounds: Round[]): number {
  let cpu = 0, secs = 0;
  for (const r of rounds) {
    cpu += (r.callerCpuPerCall + r.workerCpuPerCall) * r.done;
    secs += r.seconds;
  }
  return cpu / 1e6 / (secs * CORES);
}

const LABELS: Record<string, string> = {
  ours: "ClusterClient",
  ourstcp: "ClusterClient [TCP lanes]",
  moleculer: "moleculer 0.14.36",
  raw: "floor: raw QUIC hold servers (no RPC layer)",
  rawtls: "floor: raw TLS/TCP hold servers (no RPC layer)",
};

/** Runs the section. */
export async function run(): Promise<BenchSection> {
  const { caFile, tlsEnv } = await benchCredentials();
  const rows: BenchRow[] = [];
  const alive: Proc[] = [];
  // Raw servers do not read stdin: they are killed, not asked to leave.
  const rawServers = new Set<Proc>();
  const stopAll = (procs: Proc[]) =>
    Promise.all(procs.map((p) => rawServers.has(p) ? p.kill() : p.stop(5000)));
  // calls/s ÷ (n × one worker) by system and n, for the comparison with the raw floor.
  const scaling = new Map<string, number>();
  try {
    const nodeProblem = await ensureNodeBaselines();
    type Kind = "ours" | "ourstcp" | "moleculer" | "raw" | "rawtls";
    const only = Deno.env.get("SCALE_SYSTEMS")?.split(","); // diagnostics: a subset
    const systems = (["ours", "ourstcp", "moleculer", "raw", "rawtls"] as Kind[]).filter((k) =>
      (!only || only.includes(k)) && (k !== "moleculer" || !nodeProblem)
    );
    const start = async (kind: Kind, n: number, tag: string): Promise<System> => {
      if (kind === "raw" || kind === "rawtls") {
        const s = await raw(n, kind === "rawtls", tag, tlsEnv);
        for (const p of s.procs.slice(1)) rawServers.add(p);
        alive.push(...s.procs);
        return s;
      }
      if (kind !== "moleculer") {
        const s = await ours(n, caFile, tag, kind === "ourstcp");
        alive.push(...s.procs);
        return s;
      }
      const s = await startNodeSystem("moleculer", n, {}, ["--capacity", "8", "--hold-ms", "2"]);
      alive.push(s.caller);
      return { ...s, name: tag };
    };
    // Every system's one-worker setup stays up the whole time. The worker counts are the outer
    // loop, so that every system's n-worker rounds (ours and the raw floor's above all) run
    // within a minute or two of each other: this machine's speed drifts over minutes.
    const ones = new Map<Kind, System>();
    for (const kind of systems) ones.set(kind, await start(kind, 1, `${kind}1`));
    const byKind = new Map<Kind, BenchRow[]>(systems.map((k) => [k, []]));
    for (const n of COUNTS) {
      for (const kind of systems) {
        const one = ones.get(kind)!;
        const load = (k: number) => ({ run: "hold" as const, inFlight: PER_WORKER * k });
        let base: Round[];
        let rounds: Round[];
        let lateness = "";
        let idle = "";
        if (n === 1) {
          rounds = (await interleave([one], [load(1)], ROUNDS, ROUND_MS)).get(`${one.name}@16`)!;
          base = rounds;
        } else {
          const many = await start(kind, n, `${kind}${n}`);
          try {
            if (kind === "ours" || kind === "ourstcp") {
              // What the worker Nodes cost with no calls at all (gossip, failure detection,
              // the runtime's own wake-ups): a share of the machine the raw floor does not pay.
              const pids = many.workerPids;
              const c0 = pids.map(processCpuUs), t0 = performance.now();
              await new Promise((r) => setTimeout(r, IDLE_MS));
              const us = pids.reduce((a, p, i) => a + processCpuUs(p) - c0[i], 0);
              const share = us / ((performance.now() - t0) * 1000); // cores
              idle = `; idle worker Nodes (before the load) ${(100 * share / n).toFixed(2)} % ` +
                `of a core each, ${(100 * share / CORES).toFixed(1)} % of the machine together`;
            }
            // Two systems, two loads: run each system at its own load by interleaving pairs.
            base = [];
            rounds = [];
            for (let r = 0; r < ROUNDS + 2; r++) {
              const a = (await interleave([one], [load(1)], 1, ROUND_MS, 0)).get(`${one.name}@16`)!;
              const b = (await interleave([many], [load(n)], 1, ROUND_MS, 0))
                .get(`${many.name}@${PER_WORKER * n}`)!;
              if (r < 2) continue; // warm-up
              base.push(...a);
              rounds.push(...b);
            }
            if (kind === "ours" || kind === "ourstcp") {
              const stats = await many.caller.request<({ p50us: number } | null)[]>({
                callAll: "holdStats",
              });
              const p50s = stats.filter((s) => s !== null).map((s) => s!.p50us);
              lateness = `; worker timers late by ${median(p50s).toFixed(0)} µs (median of ` +
                `worker p50s)`;
            }
          } finally {
            const procs = (many as { procs?: Proc[] }).procs ?? [many.caller as Proc];
            await stopAll(procs);
            alive.splice(0, alive.length, ...alive.filter((p) => !procs.includes(p)));
          }
        }
        const perRound = rounds.map((r, i) => r.rate / (n * base[i].rate));
        const value = n === 1 ? 1 : median(perRound);
        scaling.set(`${kind}@${n}`, value);
        const ourKind = kind === "ours" || kind === "ourstcp";
        const target = n === 1 || !ourKind ? undefined : n <= 8 ? 0.9 : 0.7;
        byKind.get(kind)!.push({
          name: `${LABELS[kind]}, ${n} worker process${n > 1 ? "es" : ""}: calls/s ÷ ` +
            `(${n} × one worker)`,
          value,
          unit: "x",
          target: target ? `>= ${target}` : undefined,
          met: target ? value >= target : undefined,
          note: `${median(rounds.map((r) => r.rate)).toFixed(0)} calls/s, p50 ` +
            `${(median(rounds.map((r) => r.p50us)) / 1000).toFixed(1)} ms; CPU busy ` +
            `${(100 * busy(rounds)).toFixed(0)} % of ${CORES} cores; caller CPU ` +
            `${
              median(rounds.map((r) => r.callerCpuPerCall)).toFixed(1)
            } µs/call${lateness}${idle}` +
            (n > 1 ? `; per-round ${perRound.map((x) => x.toFixed(2)).join(", ")}` : ""),
        });
      }
    }
    for (const kind of systems) rows.push(...byKind.get(kind)!);
    if (nodeProblem) {
      rows.push({ name: "moleculer baseline", value: NaN, unit: "", note: nodeProblem });
    }
    // How much of the bend is the transport and the machine: ours against the raw floor of the
    // same transport, at the same n, in the same run.
    for (const [ours, floor] of [["ours", "raw"], ["ourstcp", "rawtls"]]) {
      for (const n of COUNTS.filter((n) => n > 1)) {
        const a = scaling.get(`${ours}@${n}`), b = scaling.get(`${floor}@${n}`);
        if (a === undefined || b === undefined) continue;
        rows.push({
          name: `${LABELS[ours]} scaling ÷ ${LABELS[floor]} scaling, ${n} worker processes`,
          value: a / b,
          unit: "x",
          note: `${a.toFixed(2)} against ${b.toFixed(2)}`,
        });
      }
    }
    // The floor: the `hold` workload alone (8 loops of 2 ms timers per process, no RPC) in 1 and
    // 16 processes: how much of the machine 16 workers' timers need before any RPC is done. And
    // in one process, how late this runtime fires a timer depending on where it was armed: a
    // handler runs after I/O, where Deno fires timers later than Node does (moleculer's runtime).
    const floors: { n: number; from: string }[] = [
      { n: 1, from: "timer" },
      { n: 16, from: "timer" },
      { n: 1, from: "io" },
      { n: 1, from: "immediate" },
    ];
    for (const { n, from } of floors) {
      const script = new URL("./timer_load.ts", import.meta.url).pathname;
      const children = Array.from({ length: n }, () =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "--quiet", "-A", script, "--ms", "3000", "--from", from],
          stdout: "piped",
        }).spawn());
      await new Promise((r) => setTimeout(r, 1000)); // past start-up
      const c0 = children.map((c) => processCpuUs(c.pid));
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 1500));
      const busyShare = children.reduce((a, c, i) => a + processCpuUs(c.pid) - c0[i], 0) /
        ((performance.now() - t0) * 1000 * CORES);
      const outs = await Promise.all(children.map((c) => c.output()));
      const results = outs.map((o) => JSON.parse(new TextDecoder().decode(o.stdout)));
      rows.push({
        name:
          `floor: bare 2 ms timers armed from ${from} callbacks, 8 loops per process, no RPC, ` +
          `${n} process${n > 1 ? "es" : ""}`,
        value: median(results.map((r) => r.fires / r.seconds)),
        unit: "fires/s",
        note: `per process (ideal 4000); timers late by ${
          median(results.map((r) => r.p50us)).toFixed(0)
        } µs (p50), ${
          median(results.map((r) => r.p99us)).toFixed(0)
        } µs (p99); CPU busy ` +
          `${(100 * busyShare).toFixed(0)} % of ${CORES} cores`,
      });
    }
  } finally {
    await stopAll(alive);
    await Deno.remove(caFile).catch(() => {});
  }
  return {
    title: `scale: ${PER_WORKER} calls per worker in flight, hold 2 ms with 8 slots per worker`,
    rows,
  };
}

if (import.meta.main) {
  const { renderTable } = await import("./table.ts");
  console.log(renderTable([await run()]));
}
