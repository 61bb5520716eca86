/**
 * Bench section "sim": the membership simulator (LAN profile): bootstrap convergence and how fast
 * one more join reaches every node (issue 4 target: ≤ 3 s at 10,000 nodes).
 *
 * Default 10,000 nodes, started from a converged view (`bootstrap: "preloaded"`): replaying the
 * bootstrap of 10,000 nodes costs 10⁸ record transfers (hours here), while the target is about one
 * join into a stable cluster. At 5000 nodes both ways give the same join reach (gossip bootstrap
 * max 1.02 s, preloaded 1.01 s). 10⁸ member records take ~12 GB of heap (in a child process with
 * V8's limit raised) and the run ~3 minutes; progress goes to stderr. `RPCNET_SIM_BENCH_NODES=N` and
 * `RPCNET_SIM_BENCH_BOOTSTRAP=gossip` change size and bootstrap.
 *
 * @module
 */
import type { SimReport } from "../src/membership/sim/mod.ts";
import type { BenchSection } from "./table.ts";

/**
 * Runs the simulation in a child process (`bench/sim_cli.ts --json`): its ~12 GB of member
 * records would otherwise stay in this process's heap and slow every later section (measured:
 * the direct RpcClient baseline of section `client` lost ~40 % after it).
 */
async function simulateInChild(nodes: number, bootstrap: string): Promise<SimReport> {
  const cli = new URL("./sim_cli.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc,--max-old-space-size=20480",
      cli,
      "--nodes",
      String(nodes),
      "--scenario",
      "join",
      "--profile",
      "LAN",
      "--seed",
      "1",
      "--bootstrap",
      bootstrap,
      "--json",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = await child.output();
  if (!out.success) throw new Error(`simulator exited with code ${out.code}`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) as SimReport;
}

/** Runs the section. */
export async function run(): Promise<BenchSection> {
  const nodes = Number(Deno.env.get("RPCNET_SIM_BENCH_NODES") ?? 10_000);
  const bootstrap = Deno.env.get("RPCNET_SIM_BENCH_BOOTSTRAP") === "gossip"
    ? "gossip"
    : "preloaded";
  const r = await simulateInChild(nodes, bootstrap);
  const jr = r.joinReach!;
  const note = `${nodes} nodes, ${bootstrap} bootstrap, seed 1, ${r.wallSeconds.toFixed(0)} s wall`;
  return {
    title: `Membership simulator — ${nodes} nodes, LAN, join convergence (${bootstrap} bootstrap)`,
    rows: [
      {
        name: "one join reaches every node (max)",
        value: jr.max,
        unit: "ms",
        target: "<= 3000 (at 10,000)",
        met: jr.max <= 3000 && jr.reached >= nodes,
        note: `p50 ${jr.p50.toFixed(0)} ms, p99 ${jr.p99.toFixed(0)} ms, reached ${jr.reached}`,
      },
      ...(bootstrap === "gossip"
        ? [{
          name: "bootstrap: all see all alive after last join (p50)",
          value: r.bootstrap.convergence.p50,
          unit: "ms",
          note: `p99 ${r.bootstrap.convergence.p99.toFixed(0)} ms, max ${
            r.bootstrap.convergence.max.toFixed(0)
          } ms, converged ${r.bootstrap.converged}`,
        }]
        : []),
      {
        name: "gossip per node (UDP)",
        value: r.traffic.udpBytesPerNodePerSec,
        unit: "B/s",
        note,
      },
      {
        name: "heap per member record",
        value: r.heap.bytesPerMember,
        unit: "B",
        note: r.heap.gcForced ? "forced GC" : "no forced GC",
      },
      { name: "simulation wall time", value: r.wallSeconds, unit: "s", note: `${r.events} events` },
    ],
  };
}
