/**
 * Observability cost. (a) `ClusterClient.callWorker` 64 B echo, 64 in flight, over a caller and
 * a worker `Node` in this process: without observation (the plain path: one `undefined` check
 * per call on each side), with `observe()` (per-method counters and latency histograms via a
 * server and a client interceptor, OpenTelemetry registered with the API's no-op provider),
 * and with `observe({tracing: true})` too. The three pairs run interleaved in 1 s slices and
 * each row is the median; the ratios compare figures of the same run. (b) Time of one
 * `/metrics` rendering (Prometheus text) of an observed node.
 *
 * With `OBSERVE_BENCH_BASELINE=/path/to/older/tree/mod.ts` (e.g. a `git archive` of the commit
 * before observability landed) a fourth pair built from that tree runs in the same rounds, and
 * the section reports not observed / older tree: the cost of the hooks when nothing is installed.
 *
 * `deno run -A bench/main.ts observe` (or `deno run -A bench/observe.ts`).
 *
 * @module
 */
import { Node, type NodeOptions, observe, silentLogger } from "../mod.ts";
import { type BenchSection, median } from "./table.ts";

const SLICE_MS = Number(Deno.env.get("OBSERVE_BENCH_SLICE_MS") ?? 1000);
const ROUNDS = Number(Deno.env.get("OBSERVE_BENCH_ROUNDS") ?? 5);
const INFLIGHT = 64;

interface Pair {
  name: string;
  caller: Node;
  worker: Node;
  observers: { close(): Promise<void> }[];
}

async function pair(
  name: string,
  observeOpts?: { tracing: boolean },
  NodeClass: typeof Node = Node,
): Promise<Pair> {
  // An older tree may not know `logger`: pass it only to this tree's Node.
  const common: NodeOptions = NodeClass === Node
    ? { profile: "LOCAL", logger: silentLogger }
    : { profile: "LOCAL" };
  const worker = await NodeClass.start({
    ...common,
    id: `${name}-w`,
    tags: { role: "worker", set: name },
    handlers: { echo: (req) => req },
  });
  const caller = await NodeClass.start({
    ...common,
    id: `${name}-c`,
    seeds: [worker.gossipAddr],
  });
  const until = Date.now() + 10_000;
  while (caller.registry.workers(`set=${name}`).length < 1) {
    if (Date.now() > until) throw new Error(`${name}: worker not seen`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const observers = observeOpts
    ? [
      observe(caller, { port: 0, tracing: observeOpts.tracing }),
      observe(worker, { port: 0, tracing: observeOpts.tracing }),
    ]
    : [];
  return { name, caller, worker, observers };
}

async function load(p: Pair, ms: number): Promise<number> {
  const payload = new Uint8Array(64);
  const filter = `set=${p.name}`;
  let done = 0;
  let running = true;
  const timer = setTimeout(() => running = false, ms);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: INFLIGHT }, async () => {
    while (running) {
      await p.caller.client.callWorker("echo", payload, { filter });
      done++;
    }
  }));
  clearTimeout(timer);
  return done / ((performance.now() - t0) / 1000);
}

/** Runs the section. */
export async function run(): Promise<BenchSection> {
  const baselinePath = Deno.env.get("OBSERVE_BENCH_BASELINE");
  const pairs = [
    await pair("plain"),
    await pair("metrics", { tracing: false }),
    await pair("traced", { tracing: true }),
  ];
  if (baselinePath) {
    const older = await import(baselinePath) as { Node: typeof Node };
    pairs.push(await pair("older", undefined, older.Node));
  }
  const rps: Record<string, number[]> = { plain: [], metrics: [], traced: [], older: [] };
  const ratio: Record<string, number[]> = { metrics: [], traced: [], older: [] };
  try {
    for (const p of pairs) await load(p, 300); // warm-up: connections, JIT
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate the order so no configuration always runs first in a round.
      const order = pairs.map((_, i) => pairs[(i + r) % pairs.length]);
      const got: Record<string, number> = {};
      for (const p of order) got[p.name] = await load(p, SLICE_MS);
      for (const k in got) rps[k].push(got[k]);
      ratio.metrics.push(got.metrics / got.plain);
      ratio.traced.push(got.traced / got.plain);
      if (got.older) ratio.older.push(got.plain / got.older);
    }
    // (b) one /metrics rendering of the observed worker.
    const obs = observe(pairs[1].worker, { port: 0, otel: false, callMetrics: true });
    const renders: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      bytes = obs.prometheus().length;
      renders.push((performance.now() - t0) * 1000);
    }
    await obs.close();
    const spread = (xs: number[]) =>
      `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}, ${xs.length} slices`;
    const rspread = (xs: number[]) =>
      `${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}, ${xs.length} rounds`;
    const olderRows = baselinePath
      ? [
        {
          name: `(a) … the same on the older tree (${baselinePath})`,
          value: median(rps.older),
          unit: "req/s",
          note: spread(rps.older),
        },
        {
          name: "(a) not observed / older tree",
          value: median(ratio.older),
          unit: "x",
          note: rspread(ratio.older),
        },
      ]
      : [];
    return {
      title: "observe: cost of metrics and interceptors",
      rows: [
        ...olderRows,
        {
          name: `(a) callWorker 64 B, ${INFLIGHT} in flight, not observed`,
          value: median(rps.plain),
          unit: "req/s",
          note: spread(rps.plain),
        },
        {
          name: `(a) … with observe() (call metrics)`,
          value: median(rps.metrics),
          unit: "req/s",
          note: spread(rps.metrics),
        },
        {
          name: `(a) … with observe({tracing: true})`,
          value: median(rps.traced),
          unit: "req/s",
          note: spread(rps.traced),
        },
        {
          name: "(a) observed / not observed",
          value: median(ratio.metrics),
          unit: "x",
          target: ">= 0.9",
          met: median(ratio.metrics) >= 0.9,
          note: rspread(ratio.metrics),
        },
        {
          name: "(a) traced / not observed",
          value: median(ratio.traced),
          unit: "x",
          note: rspread(ratio.traced),
        },
        {
          name: "(b) /metrics rendering",
          value: median(renders),
          unit: "µs",
          note: `${bytes} bytes of Prometheus text, 200 renders`,
        },
      ],
    };
  } finally {
    for (const p of pairs) {
      for (const o of p.observers) await o.close();
      await p.caller.stop();
      await p.worker.stop();
    }
  }
}

if (import.meta.main) {
  const { renderTable } = await import("./table.ts");
  console.log(renderTable([await run()]));
}
