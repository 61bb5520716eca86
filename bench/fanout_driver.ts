/**
 * Caller process of the "fanout" bench, one per system under test, driven over stdin/stdout by
 * `bench/fanout.ts` (the same line protocol as `bench/node/fanout_driver.mjs`, so every
 * system's rounds interleave and compare per round):
 *
 * - `cluster --seed host:port --ca file --filter tags`: a caller `Node` whose
 *   `client.callWorker` spreads calls over the workers the filter selects (default strategy);
 * - `direct --addr host:port … --ca file`: one `RpcClient` per given worker RPC address, calls
 *   dealt round-robin; with `--tie-streak N`, each call goes to a client with the fewest calls in
 *   flight, a tie to the last one picked for up to N picks in a row, then to the next in turn
 *   (close to the `ClusterClient`'s default policy, which moves at random and also ends a streak
 *   after 250 ms; without the cluster layer);
 * - `--tcp-lanes` (cluster, direct): small unary calls ride TLS-over-TCP lanes;
 * - `raw --port p … --ca-pem-env`: a raw Deno QUIC framed echo (`[u32 len][u32 id][64 B]`, the
 *   transport pattern the RPC layer builds on) from one endpoint to every given raw echo server
 *   (`bench/rpc.ts serve-raw`), calls dealt round-robin: the ceiling of the topology.
 *
 * Ready line: `{ready, callerPid}`. Commands, one JSON line each, one JSON line answer each:
 * `{run: "echo"|"hold", inFlight, ms, windowMs?}` → `{done, seconds, rate, p50us, p99us, errors,
 * perWorker?, windows?}`; `{callAll: method}` (cluster only) → the workers' answers;
 * `{quit: true}` → exit.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Node, RpcClient } from "../mod.ts";
import { readCaFile } from "../examples/worker_process.ts";
import { RawFanout } from "./raw_fanout.ts";

const { positionals, values: args } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    seed: { type: "string", multiple: true, default: [] },
    ca: { type: "string" },
    filter: { type: "string", default: "role=worker" },
    addr: { type: "string", multiple: true, default: [] },
    port: { type: "string", multiple: true, default: [] },
    profile: { type: "string", default: "LAN" },
    workers: { type: "string", default: "1" },
    "tie-streak": { type: "string", default: "0" },
    "tcp-lanes": { type: "boolean", default: false },
    // The address to bind and advertise (a lab host's); default: the Node's (loopback).
    bind: { type: "string" },
  },
});
const system = positionals[0];
const PAYLOAD = "x".repeat(64);

/** One call of the system under test; resolves with the worker id for `hold`. */
type Call = (method: "echo" | "hold") => Promise<unknown>;

let call: Call;
let close: () => Promise<void>;
let callAll: ((method: string) => Promise<unknown[]>) | undefined;

if (system === "cluster") {
  const devCa = await readCaFile(args.ca);
  const node = await Node.start({
    id: `caller-${Deno.pid}`,
    profile: args.profile as "LAN",
    seeds: args.seed,
    tags: { role: "caller" },
    devCa,
    tcpLanes: args["tcp-lanes"],
    bind: args.bind,
  });
  const want = Number(args.workers);
  const until = Date.now() + 30_000;
  while (node.registry.workers(args.filter).length < want) {
    if (Date.now() > until) throw new Error(`only ${node.registry.workers(args.filter).length}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const opts = { filter: args.filter, timeoutMs: 30_000 };
  call = (method) => node.client.callWorker(method, PAYLOAD, opts);
  callAll = async (method) =>
    (await node.client.callAll(method, null, opts)).map((r) => r.ok ? r.value : null);
  close = () => node.leave();
} else if (system === "direct") {
  const devCa = await readCaFile(args.ca);
  // One client per address, calls dealt round-robin: with several, the RPC layer over the
  // workers without the cluster layer (balancer, registry, pool) in between.
  const clients = await Promise.all(args.addr.map((addr) => {
    const [hostname, port] = addr.split(":");
    return RpcClient.connect({ hostname, port: Number(port), devCa, tcpLanes: args["tcp-lanes"] });
  }));
  const opts = { timeoutMs: 30_000 };
  const tieStreak = Number(args["tie-streak"]);
  if (tieStreak > 0) {
    const active = clients.map(() => 0);
    let last = 0;
    let streak = 0;
    call = (method) => {
      let min = active[0];
      for (let i = 1; i < active.length; i++) if (active[i] < min) min = active[i];
      let pick = last;
      if (active[last] !== min || streak >= tieStreak) {
        // The next client in turn with the fewest in flight (the last one when only it has).
        for (let k = 1; k <= active.length; k++) {
          const i = (last + k) % active.length;
          if (active[i] === min) {
            pick = i;
            break;
          }
        }
      }
      streak = pick === last ? streak + 1 : 1;
      last = pick;
      active[pick]++;
      return clients[pick].call(method, PAYLOAD, opts).then((v) => {
        active[pick]--;
        return v;
      }, (e) => {
        active[pick]--;
        throw e;
      });
    };
  } else {
    let next = 0;
    call = (method) => clients[next++ % clients.length].call(method, PAYLOAD, opts);
  }
  close = async () => {
    await Promise.all(clients.map((c) => c.close()));
  };
} else if (system === "raw" || system === "rawtls") {
  const ca = Deno.env.get("RPC_BENCH_CA")!;
  const ports = args.port.map(Number);
  const raw = system === "raw"
    ? await RawFanout.connect(ports, ca)
    : await RawFanout.connectTls(ports, ca);
  call = () => raw.call();
  close = () => raw.close();
} else {
  throw new Error(`unknown system '${system}' (cluster, direct, raw or rawtls)`);
}

/** Keeps `inFlight` calls outstanding for `ms`, latencies of every call. */
async function run(method: "echo" | "hold", inFlight: number, ms: number, windowMs = 0) {
  const lat: number[] = [];
  const perWorker: Record<string, number> = {};
  // With `windowMs`, per-worker counts per window of wall-clock time (epoch ms, comparable with
  // other processes' clocks on this machine): how fast a worker that joins takes its share.
  const windows: { at: number; counts: Record<string, number> }[] = [];
  let window: { at: number; counts: Record<string, number> } | undefined;
  let done = 0;
  let errors = 0;
  let running = true;
  const timer = setTimeout(() => running = false, ms);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (running) {
      const s = performance.now();
      try {
        const r = await call(method);
        lat.push((performance.now() - s) * 1000);
        done++;
        if (method === "hold") {
          const w = r as string;
          perWorker[w] = (perWorker[w] ?? 0) + 1;
          if (windowMs > 0) {
            const now = Date.now();
            if (!window || now >= window.at + windowMs) {
              window = { at: now - (now % windowMs), counts: {} };
              windows.push(window);
            }
            window.counts[w] = (window.counts[w] ?? 0) + 1;
          }
        }
      } catch {
        errors++;
      }
    }
  }));
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  // A typed sort: the CPU of this process is measured around the whole command.
  const sorted = Float64Array.from(lat).sort();
  return {
    done,
    seconds,
    rate: done / seconds,
    p50us: sorted[Math.floor(sorted.length * 0.5)] ?? NaN,
    p99us: sorted[Math.floor(sorted.length * 0.99)] ?? NaN,
    errors,
    ...(method === "hold" ? { perWorker } : {}),
    ...(windowMs > 0 ? { windows } : {}),
  };
}

console.log(JSON.stringify({ ready: true, system, callerPid: Deno.pid }));
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let pending = "";
outer: for await (const chunk of lines) {
  pending += chunk;
  let nl;
  while ((nl = pending.indexOf("\n")) >= 0) {
    const cmd = JSON.parse(pending.slice(0, nl));
    pending = pending.slice(nl + 1);
    if (cmd.quit) break outer;
    if (cmd.callAll) {
      // Cluster mode only: `callAll(method)` on every worker, e.g. their timer lateness.
      console.log(JSON.stringify(await callAll!(cmd.callAll)));
      continue;
    }
    console.log(JSON.stringify(await run(cmd.run, cmd.inFlight, cmd.ms, cmd.windowMs)));
  }
}
await close();
Deno.exit(0);
