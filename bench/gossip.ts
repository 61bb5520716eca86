/**
 * Bench section "gossip": what gossip maintenance costs a real node over real UDP on 127.0.0.1
 * with LAN timings — the reference chapter's "< 1 % CPU" and "~1 KB/s per node".
 *
 * N members run in this one process; after they converge, the process's CPU time over a quiet
 * window is compared against the window's wall time (the baseline: one core fully busy), and
 * divided by N. The same window's UDP bytes sent give the per-node bandwidth.
 *
 * @module
 */
import process from "node:process";
import { ClusterMembership } from "../mod.ts";
import { type BenchSection, median } from "./table.ts";

const NODES = Number(Deno.env.get("RPCNET_GOSSIP_BENCH_NODES") ?? 32);
const WINDOW_MS = Number(Deno.env.get("RPCNET_GOSSIP_BENCH_WINDOW_MS") ?? 10_000);
const ROUNDS = 3;

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

/** Runs the section. */
export async function run(): Promise<BenchSection> {
  const nodes: ClusterMembership[] = [];
  try {
    for (let i = 0; i < NODES; i++) {
      const m = new ClusterMembership({ id: `g${i}`, profile: "LAN" });
      await m.start();
      nodes.push(m);
    }
    for (const m of nodes.slice(1)) await m.join([nodes[0].localAddr]);
    const converged = await waitFor(
      () => nodes.every((m) => m.members().filter((x) => x.state === "alive").length === NODES),
      60_000,
    );
    if (!converged) throw new Error("gossip bench: members did not converge within 60 s");
    // Let join traffic (announcements, follow-up syncs) die down before measuring.
    await new Promise((r) => setTimeout(r, 5_000));

    const cpuShare: number[] = [], bytesPerSec: number[] = [], packetsPerSec: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const out0 = nodes.reduce((a, m) => a + m.stats().bytesOut, 0);
      const pk0 = nodes.reduce((a, m) => a + m.stats().packetsOut, 0);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, WINDOW_MS / ROUNDS));
      const cpu = process.cpuUsage(cpu0);
      const secs = (performance.now() - t0) / 1000;
      const out = nodes.reduce((a, m) => a + m.stats().bytesOut, 0) - out0;
      const pk = nodes.reduce((a, m) => a + m.stats().packetsOut, 0) - pk0;
      cpuShare.push((cpu.user + cpu.system) / 1e6 / secs / NODES);
      bytesPerSec.push(out / secs / NODES);
      packetsPerSec.push(pk / secs / NODES);
    }
    const failed = nodes.reduce((a, m) => a + m.stats().probeFailures, 0);
    const note = `${NODES} nodes in one process, LAN, ${ROUNDS} windows of ${
      (WINDOW_MS / ROUNDS / 1000).toFixed(1)
    } s`;
    return {
      title: "Gossip maintenance over real UDP (LAN timings)",
      rows: [
        {
          name: "CPU per node, share of one core",
          value: median(cpuShare) * 100,
          unit: "%",
          target: "< 1",
          met: median(cpuShare) < 0.01,
          note: `${note}; process CPU time ÷ wall time ÷ nodes`,
        },
        {
          name: "gossip sent per node",
          value: median(bytesPerSec),
          unit: "B/s",
          target: "<= 1024",
          met: median(bytesPerSec) <= 1024,
          note: `${median(packetsPerSec).toFixed(1)} datagrams/s per node; ${failed} failed probes`,
        },
      ],
    };
  } finally {
    await Promise.all(nodes.map((m) => m.shutdown()));
  }
}
