/**
 * A graceful leave is seen as NodeLeft (never NodeFailed) even when the leaver's only peer is the
 * seed: regression for a leave that picked its gossip targets after dropping off the live ring.
 */
import assert from "node:assert/strict";
import { type ClusterEvent, ClusterMembership } from "../mod.ts";
import { SimNetwork } from "../src/membership/sim/mod.ts";
import { waitFor } from "./_support/wait.ts";
import { formSimCluster } from "./_support/sim_cluster.ts";

Deno.test("membership over UDP: in a two-node cluster a graceful leave is NodeLeft at the seed, not NodeFailed", async () => {
  const seed = new ClusterMembership({ id: "seed", profile: "LOCAL" });
  const leaver = new ClusterMembership({ id: "leaver", profile: "LOCAL" });
  await seed.start();
  await leaver.start();
  const seen: ClusterEvent[] = [];
  for (const t of ["NodeLeft", "NodeFailed"] as const) {
    seed.addEventListener(t, (e) => seen.push(e.detail));
  }
  try {
    await leaver.join([seed.localAddr]);
    await waitFor(() => seed.get("leaver")?.state === "alive", "the leaver alive at the seed", {
      timeoutMs: 10_000,
    });
    await leaver.leave();
    await waitFor(() => seen.length > 0, "the seed to see an event", { timeoutMs: 10_000 });
    // Give a wrong NodeFailed time to show up after the NodeLeft.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(seen.map((e) => e.type), ["NodeLeft"]);
    assert.equal(seed.get("leaver")?.state, "left");
  } finally {
    await leaver.shutdown();
    await seed.shutdown();
  }
});

Deno.test("membership: a member that missed a graceful leave learns it from the peers it asks, and reports NodeLeft, not NodeFailed", async () => {
  const net = new SimNetwork({ seed: 7, latencyMs: 1, jitterMs: 1 });
  const nodes: ClusterMembership[] = [];
  const seen = new Map<string, ClusterEvent[]>();
  for (let i = 0; i < 5; i++) {
    const transport = net.createTransport();
    let state = 900 + i;
    const m = new ClusterMembership({
      id: `m${i}`,
      profile: "LOCAL",
      probeIntervalMs: 1000, // few probes while A is cut off
      retransmitMult: 1, // each member relays the leave once, soon after hearing it
      monitoredMembers: 0,
      pushPullIntervalMs: 600_000, // no anti-entropy: the leave can only come from gossip or a peer
      transport,
      clock: transport.clock,
      random: () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296),
    });
    const list: ClusterEvent[] = [];
    seen.set(m.localId, list);
    for (const t of ["NodeLeft", "NodeFailed"] as const) {
      m.addEventListener(t, (e) => list.push(e.detail));
    }
    nodes.push(m);
  }
  try {
    await formSimCluster(net, nodes);
    await net.clock.advance(15_000); // past the joiners' follow-up syncs (2 and 10 probe rounds)
    const [, a, leaver] = nodes;
    const rest = nodes.filter((m) => m !== a && m !== leaver);
    // A is cut off for the leave and its relays, so every transmission of it misses A.
    net.partition([[a.localAddr]]);
    let done = false;
    const left = leaver.leave().then(() => (done = true));
    assert.ok(await net.clock.runUntilCondition(() => done, 10_000, 10), "leave did not finish");
    await left;
    await net.clock.advance(500);
    net.heal();
    for (const m of rest) assert.equal(m.get(leaver.localId)?.state, "left", m.localId);
    assert.notEqual(a.get(leaver.localId)?.state, "left", "A heard the leave");
    // A's probes of the gone member fail; the peers it asks (ping-req) know it left.
    assert.ok(
      await net.clock.runUntilCondition(() => seen.get(a.localId)!.length > 0, 60_000),
      "A never concluded anything about the leaver",
    );
    await net.clock.advance(5000);
    assert.deepEqual(seen.get(a.localId)!.map((e) => `${e.type} ${"node" in e ? e.node.id : ""}`), [
      `NodeLeft ${leaver.localId}`,
    ]);
    assert.equal(a.get(leaver.localId)?.state, "left");
    for (const m of rest) {
      assert.deepEqual(seen.get(m.localId)!.map((e) => e.type), ["NodeLeft"], m.localId);
    }
  } finally {
    for (const m of nodes) await m.shutdown();
    await net.clock.advance(10);
  }
});
