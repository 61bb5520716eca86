/**
 * Partition detection (issue 4 item 4) in the in-memory network with virtual time, through the
 * public API: the minority side of a split reports PartitionDetected, and PartitionHealed once
 * the network heals and the sides find each other again (push-pull to tombstones, refutation).
 */
import assert from "node:assert/strict";
import { type ClusterEvent, ClusterMembership } from "../mod.ts";
import { SimNetwork } from "../src/membership/sim/mod.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

Deno.test("membership partition: minority side detects the split and reports the heal", async () => {
  const net = new SimNetwork({ seed: 7, latencyMs: 1, jitterMs: 1 });
  const N = 12;
  const nodes: ClusterMembership[] = [];
  const events = new Map<string, ClusterEvent[]>();
  for (let i = 0; i < N; i++) {
    const transport = net.createTransport();
    const m = new ClusterMembership({
      id: `p${String(i).padStart(2, "0")}`,
      profile: "LOCAL",
      transport,
      clock: transport.clock,
      random: lcg(i + 1),
    });
    const list: ClusterEvent[] = [];
    events.set(m.localId, list);
    for (const t of ["PartitionDetected", "PartitionHealed", "NodeFailed", "NodeJoined"] as const) {
      m.addEventListener(t, (e) => list.push(e.detail));
    }
    nodes.push(m);
  }
  try {
    for (const m of nodes) await m.start();
    const joins = nodes.slice(1).map((m) => m.join([nodes[0].localAddr]));
    await net.clock.runUntilCondition(() => false, 500);
    await Promise.all(joins);
    const alive = (m: ClusterMembership) => m.members().filter((x) => x.state === "alive").length;
    assert.ok(await net.clock.runUntilCondition(() => nodes.every((m) => alive(m) === N), 30_000));
    // Let the view become stable.
    await net.clock.advance(3000);

    const minority = nodes.slice(0, 4);
    const majority = nodes.slice(4);
    net.partition([minority.map((m) => m.localAddr), majority.map((m) => m.localAddr)]);
    const detected = (m: ClusterMembership) =>
      events.get(m.localId)!.find((e) => e.type === "PartitionDetected");
    assert.ok(
      await net.clock.runUntilCondition(
        () => minority.every((m) => detected(m) !== undefined),
        60_000,
      ),
      `minority did not detect: ${
        JSON.stringify(minority.map((m) => [
          m.members().map((x) => x.state[0]).join(""),
          m.stats().partitionsDetected,
          m.stats().probes,
          m.stats().packetsIn,
        ]))
      } t=${net.clock.now()}`,
    );
    const d = detected(minority[0])!;
    assert.ok(d.type === "PartitionDetected");
    // Reported as soon as a majority of the stable view is unreachable: all of them are on
    // the other side, and every member of this side is reachable.
    const majorityIds = new Set(majority.map((m) => m.localId));
    assert.ok(d.unreachable.length * 2 > N, `unreachable: ${d.unreachable}`);
    assert.ok(d.unreachable.every((id) => majorityIds.has(id)));
    for (const m of minority) assert.ok(d.reachable.includes(m.localId));
    assert.equal(d.reachable.length + d.unreachable.length, N);
    // The majority lost a minority only: no partition reported there.
    assert.ok(majority.every((m) => detected(m) === undefined));

    // Let both sides declare the other dead, then heal the network.
    await net.clock.runUntilCondition(
      () => minority.every((m) => alive(m) === 4) && majority.every((m) => alive(m) === 8),
      60_000,
    );
    net.heal();
    const healed = (m: ClusterMembership) =>
      events.get(m.localId)!.some((e) => e.type === "PartitionHealed");
    assert.ok(
      await net.clock.runUntilCondition(
        () => minority.every(healed) && nodes.every((m) => alive(m) === N),
        180_000,
      ),
      `not healed: alive ${nodes.map(alive).join(",")}`,
    );
  } finally {
    for (const m of nodes) await m.shutdown();
    await net.clock.advance(10);
  }
});
