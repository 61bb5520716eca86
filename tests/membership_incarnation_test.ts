/**
 * Issue 9 item 2: incarnations are overflow-safe. A forged suspect at 0xFFFFFFFF must not get a
 * live member declared dead (its refutation used to be 2^32, written as 0 and ignored).
 * Incarnations are compared as serial numbers; implausible jumps are dropped and counted.
 */
import assert from "node:assert/strict";
import { type ClusterEvent, ClusterMembership } from "../mod.ts";
import { SimNetwork } from "../src/membership/sim/mod.ts";
import { ByteWriter, writeHeader, writeMessage } from "../src/membership/codec.ts";
import {
  compareIncarnation,
  MAX_INCARNATION_JUMP,
  nextIncarnation,
} from "../src/membership/incarnation.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function forgedSuspect(node: string, incarnation: number): Uint8Array {
  const w = new ByteWriter(128);
  writeHeader(w, new Uint8Array(0), 0);
  writeMessage(w, { type: "suspect", node, incarnation, from: "forger" });
  return w.toBytes();
}

async function threeNodes(victimIncarnation: number) {
  const net = new SimNetwork({ seed: 5, latencyMs: 1, jitterMs: 1 });
  const nodes: ClusterMembership[] = [];
  const failed: string[] = [];
  for (let i = 0; i < 3; i++) {
    const t = net.createTransport();
    const m = new ClusterMembership({
      id: `n${i}`,
      profile: "LOCAL",
      transport: t,
      clock: t.clock,
      random: lcg(i + 7),
      incarnation: i === 1 ? victimIncarnation : 0,
    });
    m.addEventListener("NodeFailed", (e: CustomEvent<ClusterEvent>) => {
      if (e.detail.type === "NodeFailed") failed.push(`${m.localId}:${e.detail.node.id}`);
    });
    nodes.push(m);
  }
  for (const m of nodes) await m.start();
  const joins = nodes.slice(1).map((m) => m.join([nodes[0].localAddr]));
  await net.clock.advance(200);
  await Promise.all(joins);
  assert.ok(
    await net.clock.runUntilCondition(
      () => nodes.every((m) => m.members().filter((x) => x.state === "alive").length === 3),
      30_000,
    ),
  );
  const forger = net.createTransport();
  return {
    net,
    nodes,
    failed,
    forge(incarnation: number) {
      for (const m of nodes) forger.sendPacket(m.localAddr, forgedSuspect("n1", incarnation));
    },
    async close() {
      for (const m of nodes) await m.shutdown();
      await net.clock.advance(10);
    },
  };
}

Deno.test("incarnation: serial-number order, wrap-around and the implausible-jump window", () => {
  assert.equal(compareIncarnation(5, 5), "equal");
  assert.equal(compareIncarnation(6, 5), "newer");
  assert.equal(compareIncarnation(4, 5), "older");
  assert.equal(nextIncarnation(0xffff_ffff), 0);
  assert.equal(compareIncarnation(0, 0xffff_ffff), "newer");
  assert.equal(compareIncarnation(0xffff_ffff, 0), "older");
  assert.equal(compareIncarnation(MAX_INCARNATION_JUMP - 1, 0), "newer");
  assert.equal(compareIncarnation(MAX_INCARNATION_JUMP, 0), "implausible");
  assert.equal(compareIncarnation(2 ** 31 - 1, 0), "implausible");
  assert.equal(compareIncarnation(2 ** 31, 0), "older");
  // Across the wrap: a forged jump just inside the window is accepted, and its refutation is
  // newer than both the forged value and (unless the jump was the window's last step) the value
  // a member that missed the forged message still holds.
  const held = 0xffff_fff0;
  const forged = (held + MAX_INCARNATION_JUMP - 2) >>> 0;
  assert.equal(compareIncarnation(forged, held), "newer");
  assert.equal(compareIncarnation(nextIncarnation(forged), forged), "newer");
  assert.equal(compareIncarnation(nextIncarnation(forged), held), "newer");
});

Deno.test("incarnation: a forged suspect at 0xFFFFFFFF does not kill a live member", async () => {
  const c = await threeNodes(0);
  try {
    c.forge(0xffff_ffff);
    await c.net.clock.advance(15_000);
    assert.deepEqual(c.failed, []);
    for (const m of c.nodes) {
      const v = m.get("n1")!;
      assert.equal(v.state, "alive", `${m.localId} sees n1 ${v.state}`);
    }
  } finally {
    await c.close();
  }
});

Deno.test("incarnation: a member at 0xFFFFFFF0 refutes a suspect at 0xFFFFFFFF by wrapping to 0", async () => {
  const c = await threeNodes(0xffff_fff0);
  try {
    c.forge(0xffff_ffff);
    await c.net.clock.advance(15_000);
    assert.deepEqual(c.failed, []);
    assert.equal(c.nodes[1].stats().incarnation, 0);
    assert.ok(c.nodes[1].stats().refutations >= 1);
    for (const m of c.nodes) {
      const v = m.get("n1")!;
      assert.equal(v.state, "alive", `${m.localId} sees n1 ${v.state}`);
      assert.equal(v.incarnation, 0, `${m.localId} holds n1 at ${v.incarnation}`);
    }
    // A second forged suspect 2^30 ahead is implausible: dropped and counted everywhere.
    c.forge(MAX_INCARNATION_JUMP);
    await c.net.clock.advance(5_000);
    assert.deepEqual(c.failed, []);
    for (const m of c.nodes) {
      assert.ok(m.stats().droppedIncarnation >= 1, `${m.localId} did not count the drop`);
      assert.equal(m.get("n1")!.state, "alive");
    }
  } finally {
    await c.close();
  }
});
