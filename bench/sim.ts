/**
 * Bench section "sim": the membership simulator (LAN profile): bootstrap convergence and how fast
 * one more join reaches every node (issue 4 target: ≤ 3 s at 10,000 nodes).
 *
 * Default size 2000, not 10,000: every node holds every member (~220 B of heap per member record
 * measured at 2000 nodes), so 10,000 nodes need 10⁸ records ≈ 22 GB of heap — more than this
 * shared 23 GB machine has. `RPCNET_SIM_BENCH_NODES=10000` runs the full size where memory allows
 * (with `--v8-flags=--max-old-space-size=...`). Takes minutes; progress goes to stderr.
 *
 * @module
 */
import { simulate } from "../mod.ts";
import type { BenchSection } from "./table.ts";

/** Runs the section. */
export async function run(): Promise<BenchSection> {
  const nodes = Number(Deno.env.get("RPCNET_SIM_BENCH_NODES") ?? 2000);
  const r = await simulate({
    nodes,
    scenario: "join",
    profile: "LAN",
    seed: 1,
    onProgress: (line) => console.error(line),
  });
  const jr = r.joinReach!;
  const note = `${nodes} nodes, seed 1, ${r.wallSeconds.toFixed(0)} s wall`;
  return {
    title: `Membership simulator — ${nodes} nodes, LAN, join convergence`,
    rows: [
      {
        name: "one join reaches every node (max)",
        value: jr.max,
        unit: "ms",
        target: "<= 3000 (at 10,000)",
        met: jr.max <= 3000 && jr.reached >= nodes,
        note: `p50 ${jr.p50.toFixed(0)} ms, p99 ${jr.p99.toFixed(0)} ms, reached ${jr.reached}`,
      },
      {
        name: "bootstrap: all see all alive after last join (p50)",
        value: r.bootstrap.convergence.p50,
        unit: "ms",
        note: `p99 ${r.bootstrap.convergence.p99.toFixed(0)} ms, max ${
          r.bootstrap.convergence.max.toFixed(0)
        } ms, converged ${r.bootstrap.converged}`,
      },
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
