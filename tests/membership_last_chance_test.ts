/**
 * Lifeguard's last chance before a death, in the in-memory network with virtual time: a member
 * that missed a refutation must not declare the refuted member dead just because that member is
 * paused at the moment its stale suspicion expires.
 */
import assert from "node:assert/strict";
import { type ClusterEvent, ClusterMembership } from "../mod.ts";
import { SimNetwork, type SimTransport } from "../src/membership/sim/mod.ts";
import {
  ByteWriter,
  type GossipMessage,
  writeHeader,
  writeMessage,
} from "../src/membership/codec.ts";
import { formSimCluster } from "./_support/sim_cluster.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Sends raw protocol messages from a transport that is not a member. */
function inject(from: SimTransport, to: string, messages: GossipMessage[]): void {
  const w = new ByteWriter();
  writeHeader(w, new Uint8Array(), 0);
  for (const m of messages) writeMessage(w, m);
  from.sendPacket(to, w.toBytes());
}

Deno.test("lifeguard: a stale suspicion of a member paused when it expires is refuted by peers, not declared dead", async () => {
  const PROBE_INTERVAL = 1500;
  const SUSPICION = 2 * PROBE_INTERVAL; // suspicionMult 2 × max(1, log10 5) × probe interval, fixed
  const net = new SimNetwork({ seed: 3, latencyMs: 1, jitterMs: 1 });
  const nodes: ClusterMembership[] = [];
  const events = new Map<string, ClusterEvent[]>();
  for (let i = 0; i < 5; i++) {
    const transport = net.createTransport();
    const m = new ClusterMembership({
      id: `m${String(i).padStart(2, "0")}`,
      profile: "LOCAL",
      probeIntervalMs: PROBE_INTERVAL,
      probeTimeoutMs: 100,
      suspicionMult: 2,
      suspicionMaxTimeoutMult: 1, // a fixed suspicion timeout: the expiry time is known
      monitoredMembers: 0, // no phi-triggered probes: only the round-robin probe and gossip
      pushPullIntervalMs: 600_000, // no anti-entropy sync during the test
      transport,
      clock: transport.clock,
      random: lcg(300 + i),
    });
    const list: ClusterEvent[] = [];
    events.set(m.localId, list);
    m.addEventListener("NodeFailed", (e) => list.push(e.detail));
    nodes.push(m);
  }
  // Not members: they only inject rumours, one on each side of the partition below.
  const toA = net.createTransport();
  const toRest = net.createTransport();
  try {
    await formSimCluster(net, nodes);
    await net.clock.advance(5000);
    const [, a, b] = nodes;
    const others = nodes.filter((m) => m !== a);

    // A is cut off while it comes to suspect B (incarnation 0) and while B refutes that rumour
    // to everyone else (incarnation 1): A misses the refutation, as after an epidemic miss.
    const t0 = net.clock.now();
    net.partition([[a.localAddr, toA.localAddr]]);
    const rumour = { type: "suspect", node: b.localId, incarnation: 0, from: "m03" } as const;
    inject(toA, a.localAddr, [rumour]);
    inject(toRest, b.localAddr, [rumour]);
    await net.clock.advance(100);
    // B's refutation, relayed to all on its side so that no epidemic miss there muddles the setup.
    const { id, incarnation, gossipAddr, rpcAddr, tags } = b.localMember();
    assert.equal(incarnation, 1, "B did not refute");
    const refutation = { type: "alive", node: id, incarnation, gossipAddr, rpcAddr, tags } as const;
    for (const m of others) if (m !== b) inject(toRest, m.localAddr, [refutation]);
    await net.clock.advance(SUSPICION - 500);
    net.heal();
    assert.equal(a.get(b.localId)?.state, "suspect");
    assert.equal(a.get(b.localId)?.incarnation, 0);
    for (const m of others) assert.equal(m.get(b.localId)?.incarnation, 1, m.localId);

    // B is paused across A's expiry and its last-chance wait (at most 8 × 100 ms), but for less
    // than a probe interval, so the members that know it alive keep getting its acks in time.
    await net.clock.advance(t0 + SUSPICION - 300 - net.clock.now());
    assert.equal(a.get(b.localId)?.state, "suspect", "A learnt the refutation before expiry");
    net.pause(b.localAddr, 1200);
    await net.clock.advance(5000);

    assert.deepEqual(
      [...events.values()].flat().map((e) => e.type === "NodeFailed" && e.node.id),
      [],
      "a member was declared failed",
    );
    for (const m of others) assert.equal(m.get(b.localId)?.state, "alive", m.localId);
    assert.equal(a.get(b.localId)?.state, "alive");
  } finally {
    for (const m of nodes) await m.shutdown();
    await toA.close();
    await toRest.close();
    await net.clock.advance(10);
  }
});
