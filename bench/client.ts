/**
 * Bench section "client": what the cluster layer costs on top of plain RPC, in one run.
 *
 * (a) throughput of `ClusterClient.callWorker` over three worker processes against a direct
 * `RpcClient` to one of them, 64 calls in flight, 64 B echo, alternating rounds so both see the
 * same machine state; the ratio is the figure (target ≥ 0.9). More baselines separate the
 * cluster layer's own cost from the cost of spreading load over three connections (and three
 * busy worker processes on a small machine): three plain `RpcClient`s used round-robin (each on
 * its own QUIC endpoint, as `RpcClient.connect` makes them, and on one shared endpoint, as the
 * `ClusterClient` pool makes them), and `ClusterClient` pinned to the one worker the direct
 * client uses. CPU per call is reported for the client process and for the worker processes
 * (from /proc, on Linux): on a 2-core machine the throughput follows their sum.
 * (b) the ClusterClient layer's own cost per call with the network taken out (a connection whose
 * `call` resolves at once).
 * (c) balancer + registry overhead per call: `selectWorker("role=worker")` + `start` + `finish`
 * timed in batches of 1000 in isolation, p50 and p99 per call in µs, against the reference
 * chapter's "< 0.1 ms additional latency for load balancing".
 *
 * Workers run as child processes (`examples/demo_worker.ts`); the clients run in this process.
 *
 * @module
 */

import process from "node:process";
import {
  ClusterClient,
  createDevCa,
  Node,
  RpcClient,
  type StrategyName,
  WorkerRegistry,
} from "../mod.ts";
import { WorkerProcess, writeCaFile } from "../examples/worker_process.ts";
import { type BenchRow, type BenchSection, median, quantile } from "./table.ts";

// Short rounds, many of them, interleaved: on a shared 2-core machine the load from other
// processes swings within seconds, so each ratio compares neighbours in time.
const ROUND_MS = Number(Deno.env.get("CLIENT_BENCH_MS") ?? 400);
const ROUNDS = Number(Deno.env.get("CLIENT_BENCH_ROUNDS") ?? 9);
const IN_FLIGHT = 64;
const PAYLOAD = "x".repeat(64);

/** This process's CPU time (every thread, QUIC included), µs. */
function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const cpuPerCall: Record<string, number[]> = {};
const workerCpuPerCall: Record<string, number[]> = {};
let workerPids: number[] = [];

/** CPU time of the worker processes, µs (Linux /proc; NaN elsewhere). */
function workersCpuUs(): number {
  let total = 0;
  for (const pid of workerPids) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) * 10_000; // utime + stime, 100 Hz ticks
    } catch {
      return NaN;
    }
  }
  return total;
}

async function drive(call: () => Promise<unknown>, ms: number, label = ""): Promise<number> {
  let done = 0;
  let stop = false;
  const w0 = label ? workersCpuUs() : 0;
  const t0 = performance.now();
  const c0 = cpuUs();
  const timer = setTimeout(() => (stop = true), ms);
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (!stop) {
      await call();
      done++;
    }
  }));
  clearTimeout(timer);
  if (label) {
    (cpuPerCall[label] ??= []).push((cpuUs() - c0) / done);
    (workerCpuPerCall[label] ??= []).push((workersCpuUs() - w0) / done);
  }
  return done / ((performance.now() - t0) / 1000);
}

/** Per-call cost of selectWorker + start + finish, from batches of `batch` calls. */
function overhead(registry: WorkerRegistry, batches: number, batch: number): number[] {
  const b = registry.balancer;
  const perCallUs: number[] = [];
  for (let i = 0; i < batches; i++) {
    const t0 = performance.now();
    for (let j = 0; j < batch; j++) {
      const w = registry.selectWorker("role=worker");
      b.start(w.id);
      b.finish(w.id, 0.2, true);
    }
    perCallUs.push(((performance.now() - t0) * 1000) / batch);
  }
  return perCallUs;
}

/** Runs the section. */
export async function run(): Promise<BenchSection> {
  const ca = await createDevCa();
  const caFile = await writeCaFile(ca);
  const workers: WorkerProcess[] = [];
  let node: Node | undefined;
  let direct: RpcClient[] = [];
  let sharedEndpoint: Deno.QuicEndpoint | undefined;
  const rows: BenchRow[] = [];
  try {
    node = await Node.start({
      id: "bench-client",
      profile: "LOCAL",
      tags: { role: "client" },
      devCa: ca,
      strategy: "least_connections",
    });
    for (const id of ["w1", "w2", "w3"]) {
      workers.push(
        await WorkerProcess.spawn({
          id,
          seeds: [node.gossipAddr],
          caFile,
          delayMs: 0,
          tags: `role=worker,name=${id}`,
        }),
      );
    }
    const until = Date.now() + 20_000;
    while (node.registry.workers("role=worker").length < 3) {
      if (Date.now() > until) throw new Error("workers did not join");
      await new Promise((r) => setTimeout(r, 20));
    }
    const clients = await Promise.all(workers.map((w) => {
      const [hostname, port] = w.info.rpcAddr.split(":");
      return RpcClient.connect({ hostname, port: Number(port), devCa: ca });
    }));
    workerPids = workers.map((w) => w.child.pid);
    sharedEndpoint = new Deno.QuicEndpoint({ hostname: "0.0.0.0", port: 0 });
    const endpoint = sharedEndpoint;
    const onShared = await Promise.all(workers.map((w) => {
      const [hostname, port] = w.info.rpcAddr.split(":");
      return RpcClient.connect({ hostname, port: Number(port), devCa: ca, endpoint });
    }));
    direct = [...clients, ...onShared];
    const client = node.client;
    let next = 0;
    let nextShared = 0;
    const opts = { timeoutMs: 30_000 };
    const variants = {
      direct1: () => clients[0].call("echo", PAYLOAD, opts),
      cluster3: () =>
        client.callWorker("echo", PAYLOAD, { filter: "role=worker", timeoutMs: 30_000 }),
      direct3: () => clients[next++ % 3].call("echo", PAYLOAD, opts),
      direct3shared: () => onShared[nextShared++ % 3].call("echo", PAYLOAD, opts),
      cluster1: () => client.callWorker("echo", PAYLOAD, { filter: "name=w1", timeoutMs: 30_000 }),
    };
    type V = keyof typeof variants;
    const rates: Record<V, number[]> = {
      direct1: [],
      cluster3: [],
      direct3: [],
      direct3shared: [],
      cluster1: [],
    };
    for (const v of Object.keys(variants) as V[]) await drive(variants[v], 300); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      const order = Object.keys(variants) as V[];
      if (r % 2) order.reverse(); // ABCD DCBA …: no variant always runs first
      for (const v of order) rates[v].push(await drive(variants[v], ROUND_MS, v));
    }
    const spread = (xs: number[]) =>
      `min–max ${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
    const ratioRow = (name: string, a: V, b: V, target?: string): BenchRow => {
      const ratios = rates[a].map((x, i) => x / rates[b][i]);
      const value = median(ratios);
      return {
        name,
        value,
        unit: "x",
        target,
        met: target ? value >= 0.9 : undefined,
        note: `per-round ratios ${ratios.map((x) => x.toFixed(2)).join(", ")}`,
      };
    };
    rows.push(
      {
        name: `direct RpcClient → 1 worker, 64 B echo, ${IN_FLIGHT} in flight`,
        value: median(rates.direct1),
        unit: "req/s",
        note: `baseline; ${ROUNDS} rounds × ${ROUND_MS} ms, ${spread(rates.direct1)}`,
      },
      {
        name: `ClusterClient.callWorker → 3 workers (least_connections), ${IN_FLIGHT} in flight`,
        value: median(rates.cluster3),
        unit: "req/s",
        note: spread(rates.cluster3),
      },
      ratioRow(
        "ClusterClient (3 workers) / direct RpcClient (1 worker)",
        "cluster3",
        "direct1",
        ">= 0.9",
      ),
      {
        name: `3 direct RpcClients round-robin → 3 workers, ${IN_FLIGHT} in flight`,
        value: median(rates.direct3),
        unit: "req/s",
        note: `second baseline: 3 connections (an endpoint each), no cluster layer; ` +
          spread(rates.direct3),
      },
      ratioRow("ClusterClient (3 workers) / 3 direct RpcClients", "cluster3", "direct3"),
      {
        name: `3 direct RpcClients on one shared endpoint round-robin, ${IN_FLIGHT} in flight`,
        value: median(rates.direct3shared),
        unit: "req/s",
        note: `3 connections as the ClusterClient pool opens them; ${spread(rates.direct3shared)}`,
      },
      ratioRow(
        "ClusterClient (3 workers) / 3 direct RpcClients on a shared endpoint",
        "cluster3",
        "direct3shared",
      ),
      {
        name: `ClusterClient.callWorker → 1 worker (filter name=w1), ${IN_FLIGHT} in flight`,
        value: median(rates.cluster1),
        unit: "req/s",
        note: spread(rates.cluster1),
      },
      ratioRow("ClusterClient (1 worker) / direct RpcClient (same worker)", "cluster1", "direct1"),
      {
        name: "client-process CPU per call: direct RpcClient (1 worker)",
        value: median(cpuPerCall.direct1),
        unit: "µs",
        note: "user+system, every thread of this process",
      },
      {
        name: "client-process CPU per call: ClusterClient (3 workers)",
        value: median(cpuPerCall.cluster3),
        unit: "µs",
        note: `ClusterClient pinned to 1 worker: ${median(cpuPerCall.cluster1).toFixed(1)} µs; ` +
          `3 direct clients: ${median(cpuPerCall.direct3).toFixed(1)} µs; on a shared endpoint: ` +
          `${median(cpuPerCall.direct3shared).toFixed(1)} µs`,
      },
      {
        name: "worker-processes CPU per call: direct RpcClient (1 worker)",
        value: median(workerCpuPerCall.direct1),
        unit: "µs",
        note: `ClusterClient pinned to 1 worker: ${
          median(workerCpuPerCall.cluster1).toFixed(1)
        } µs; user+system of the 3 worker processes, /proc (100 Hz ticks)`,
      },
      {
        name: "worker-processes CPU per call: ClusterClient (3 workers)",
        value: median(workerCpuPerCall.cluster3),
        unit: "µs",
        note: `3 direct clients: ${median(workerCpuPerCall.direct3).toFixed(1)} µs; on a ` +
          `shared endpoint: ${median(workerCpuPerCall.direct3shared).toFixed(1)} µs`,
      },
    );

    // (b) the whole ClusterClient layer without the network: a connection whose `call` resolves
    // at once, against calling that same fake directly. Same membership, same balancer.
    {
      const fake = {
        closed: false,
        call: (_m: string, r: unknown) => Promise.resolve(r),
        close: () => Promise.resolve(),
      } as unknown as RpcClient;
      const registry = new WorkerRegistry(node.membership, { strategy: "least_connections" });
      const layer = new ClusterClient(registry, { connect: () => Promise.resolve(fake) });
      const callOpts = { filter: "role=worker", timeoutMs: 30_000 };
      const perCall = async (f: () => Promise<unknown>, n: number) => {
        const t0 = performance.now();
        await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
          for (let i = 0; i < n / IN_FLIGHT; i++) await f();
        }));
        return ((performance.now() - t0) * 1000) / n;
      };
      const diffs: number[] = [];
      try {
        for (let r = 0; r < 7; r++) {
          const base = await perCall(() => fake.call("echo", PAYLOAD, opts), 64_000);
          const full = await perCall(() => layer.callWorker("echo", PAYLOAD, callOpts), 64_000);
          if (r > 1) diffs.push(full - base); // first two rounds warm up
        }
      } finally {
        await layer.close();
        registry.close();
      }
      const value = median(diffs);
      rows.push({
        name: "ClusterClient layer per call, no network (select, pool, balancer, budget, outlier)",
        value,
        unit: "µs",
        target: "< 100",
        met: value < 100,
        note: `CPU time over a fake connection minus the fake alone, ${IN_FLIGHT} in flight, ` +
          `5 × 64 000 calls`,
      });
    }

    // (c) selection overhead in isolation, per strategy, over the live 3-worker membership.
    const strategies: StrategyName[] = ["least_connections", "p2c_peak_ewma", "round_robin"];
    for (const strategy of strategies) {
      const registry = new WorkerRegistry(node.membership, { strategy, seed: 1 });
      try {
        overhead(registry, 50, 1000); // warm-up
        const us = overhead(registry, 300, 1000);
        const p50 = quantile(us, 0.5);
        const p99 = quantile(us, 0.99);
        rows.push({
          name: `selectWorker + start + finish (${strategy}), p50 per call`,
          value: p50,
          unit: "µs",
          target: "< 100",
          met: p50 < 100,
          note: "batches of 1000, 300 batches",
        });
        rows.push({
          name: `selectWorker + start + finish (${strategy}), p99 per call`,
          value: p99,
          unit: "µs",
          target: "< 100",
          met: p99 < 100,
          note: `reference chapter: "< 0.1 ms" for load balancing`,
        });
      } finally {
        registry.close();
      }
    }
  } finally {
    for (const c of direct) await c.close();
    sharedEndpoint?.close();
    for (const w of workers) await w.stop();
    await node?.stop();
    await Deno.remove(caFile).catch(() => {});
  }
  return { title: "client: ClusterClient vs direct RpcClient, selection overhead", rows };
}

if (import.meta.main) {
  const { renderTable } = await import("./table.ts");
  console.log(renderTable([await run()]));
}
