/**
 * Issue 9 item 3: partitions longer than the tombstone lifetime heal. Failed members are kept on
 * a reconnect list (24 h by default, apart from the 60 s tombstone) and tried every
 * `reconnectIntervalMs`; a synced dead verdict about a member this node can reach is checked
 * with a ping instead of raising a suspicion. Simulated (virtual time) for 20 s, 75 s and 1 h
 * partitions of {3}|{2} with LAN timings, plus a real-UDP run on loopback through a transport
 * wrapper that drops traffic between the sides.
 */
import assert from "node:assert/strict";
import {
  type ClusterEvent,
  ClusterMembership,
  PROFILES,
  type Transport,
  UdpTransport,
} from "../mod.ts";
import { SimNetwork } from "../src/membership/sim/mod.ts";
import { waitFor } from "./_support/wait.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function aliveCount(m: ClusterMembership): number {
  return m.members().filter((x) => x.state === "alive").length;
}

interface HealResult {
  /** Virtual ms from the network's return until every node saw all 5 alive. */
  healMs: number;
  /** NodeSuspect events, after the heal, about a member on the observer's own side. */
  sameSideSuspicions: number;
}

async function simulatePartition(partitionMs: number, seed: number): Promise<HealResult> {
  const net = new SimNetwork({ seed, latencyMs: 1, jitterMs: 1 });
  const nodes: ClusterMembership[] = [];
  const suspects: { at: number; by: string; about: string }[] = [];
  for (let i = 0; i < 5; i++) {
    const transport = net.createTransport();
    const m = new ClusterMembership({
      id: `h${i + 1}`,
      profile: "LAN",
      transport,
      clock: transport.clock,
      random: lcg(seed * 10 + i),
    });
    m.addEventListener("NodeSuspect", (e: CustomEvent<ClusterEvent>) => {
      if (e.detail.type === "NodeSuspect") {
        suspects.push({ at: net.clock.now(), by: m.localId, about: e.detail.node.id });
      }
    });
    nodes.push(m);
  }
  try {
    for (const m of nodes) await m.start();
    const joins = nodes.slice(1).map((m) => m.join([nodes[0].localAddr]));
    await net.clock.advance(500);
    await Promise.all(joins);
    assert.ok(
      await net.clock.runUntilCondition(() => nodes.every((m) => aliveCount(m) === 5), 60_000),
    );
    await net.clock.advance(10_000);
    const left = nodes.slice(0, 3);
    const right = nodes.slice(3);
    const side = new Map<string, number>();
    for (const m of left) side.set(m.localId, 0);
    for (const m of right) side.set(m.localId, 1);
    net.partition([left.map((m) => m.localAddr), right.map((m) => m.localAddr)]);
    await net.clock.advance(partitionMs);
    // Each side holds only itself alive by now.
    assert.ok(left.every((m) => aliveCount(m) === 3), "left side still sees the right side");
    assert.ok(right.every((m) => aliveCount(m) === 2), "right side still sees the left side");
    net.heal();
    const t0 = net.clock.now();
    const healed = await net.clock.runUntilCondition(
      () => nodes.every((m) => aliveCount(m) === 5),
      10 * 60_000,
    );
    const healMs = net.clock.now() - t0;
    assert.ok(healed, `not healed 10 min after the network returned`);
    await net.clock.advance(5_000);
    const sameSideSuspicions = suspects.filter((s) =>
      s.at >= t0 && side.get(s.by) === side.get(s.about)
    ).length;
    return { healMs, sameSideSuspicions };
  } finally {
    for (const m of nodes) await m.shutdown();
    await net.clock.advance(10);
  }
}

const LAN = PROFILES.LAN;
const bound = 2 * LAN.reconnectIntervalMs;

for (const [label, ms] of [["20 s", 20_000], ["75 s", 75_000], ["1 h", 3_600_000]] as const) {
  Deno.test(`reconnect (sim, LAN): a ${label} partition of {3}|{2} heals within 2 reconnect intervals, with no suspicion of reachable members`, async () => {
    const results: HealResult[] = [];
    for (const seed of [1, 2, 3]) results.push(await simulatePartition(ms, seed));
    console.log(
      `${label} partition: healed in ${
        results.map((r) => (r.healMs / 1000).toFixed(1)).join(" / ")
      } s (virtual; bound ${bound / 1000} s), same-side suspicions ${
        results.map((r) => r.sameSideSuspicions).join(" / ")
      }`,
    );
    for (const r of results) {
      assert.ok(r.healMs <= bound, `healed after ${r.healMs} ms, over ${bound}`);
      assert.equal(r.sameSideSuspicions, 0);
    }
  });
}

/** A transport that drops everything to the addresses in `blocked` (a one-host firewall). */
class DroppingTransport implements Transport {
  readonly blocked = new Set<string>();
  constructor(readonly inner: UdpTransport) {}
  get localAddr(): string {
    return this.inner.localAddr;
  }
  get maxPacketSize(): number {
    return this.inner.maxPacketSize;
  }
  sendPacket(to: string, data: Uint8Array): void {
    if (!this.blocked.has(to)) this.inner.sendPacket(to, data);
  }
  onPacket(handler: (data: Uint8Array, from: string) => void): void {
    this.inner.onPacket((data, from) => {
      if (!this.blocked.has(from)) handler(data, from);
    });
  }
  request(to: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.blocked.has(to)) {
      return new Promise((_, reject) =>
        setTimeout(() => reject(new Error("dropped")), Math.min(timeoutMs, 200))
      );
    }
    return this.inner.request(to, request, timeoutMs);
  }
  onRequest(handler: (request: Uint8Array, from: string) => Promise<Uint8Array>): void {
    this.inner.onRequest(handler);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

Deno.test({
  name:
    "reconnect (real UDP, LOCAL): a {3}|{2} partition longer than the tombstone lifetime heals within 2 reconnect intervals",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const transports: DroppingTransport[] = [];
    const nodes: ClusterMembership[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const t = new DroppingTransport(await UdpTransport.bind());
        transports.push(t);
        nodes.push(new ClusterMembership({ id: `u${i + 1}`, profile: "LOCAL", transport: t }));
      }
      for (const m of nodes) await m.start();
      for (const m of nodes.slice(1)) await m.join([nodes[0].localAddr]);
      await waitFor(
        () => nodes.every((m) => aliveCount(m) === 5),
        "the 5 nodes to see each other alive",
        { timeoutMs: 10_000 },
      );
      const left = [0, 1, 2];
      const right = [3, 4];
      for (const i of left) for (const j of right) transports[i].blocked.add(nodes[j].localAddr);
      for (const i of right) for (const j of left) transports[i].blocked.add(nodes[j].localAddr);
      // Past the LOCAL tombstone lifetime (10 s): the other side is reaped from the table.
      const reap = PROFILES.LOCAL.reapIntervalMs;
      await waitFor(
        () =>
          left.every((i) => nodes[i].members().length === 3) &&
          right.every((i) => nodes[i].members().length === 2),
        "the sides to reap each other",
        { timeoutMs: reap + 20_000, pollMs: 100 },
      );
      for (const t of transports) t.blocked.clear();
      const t0 = Date.now();
      await waitFor(
        () => nodes.every((m) => aliveCount(m) === 5),
        "the 5 nodes to see each other alive again",
        { timeoutMs: 10_000, pollMs: 20 },
      );
      const healMs = Date.now() - t0;
      console.log(
        `real UDP: healed ${healMs} ms after the network returned (reconnect interval ${PROFILES.LOCAL.reconnectIntervalMs} ms)`,
      );
      // 2 intervals, plus slack for a loaded 2-core machine.
      assert.ok(healMs <= 2 * PROFILES.LOCAL.reconnectIntervalMs + 1000, `took ${healMs} ms`);
      assert.ok(nodes.some((m) => m.stats().reconnects > 0));
    } finally {
      for (const m of nodes) await m.shutdown();
    }
  },
});
