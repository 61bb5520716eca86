/**
 * Protocol behaviour in the in-memory network with virtual time, through the public API:
 * refutation of a suspicion by a paused (starved) member, tombstone reaping without resurrection,
 * bounded event subscriptions, user broadcasts, and the Lifeguard switch.
 */
import assert from "node:assert/strict";
import {
  type ClusterEvent,
  ClusterMembership,
  type ClusterMembershipOptions,
  RpcError,
} from "../mod.ts";
import { SimNetwork } from "../src/membership/sim/mod.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

interface Cluster {
  net: SimNetwork;
  nodes: ClusterMembership[];
  events: Map<string, ClusterEvent[]>;
  close(): Promise<void>;
}

async function cluster(n: number, opts: ClusterMembershipOptions = {}, seed = 1): Promise<Cluster> {
  const net = new SimNetwork({ seed, latencyMs: 1, jitterMs: 1 });
  const nodes: ClusterMembership[] = [];
  const events = new Map<string, ClusterEvent[]>();
  for (let i = 0; i < n; i++) {
    const transport = net.createTransport();
    const m = new ClusterMembership({
      id: `m${String(i).padStart(2, "0")}`,
      profile: "LOCAL",
      transport,
      clock: transport.clock,
      random: lcg(seed * 100 + i),
      ...opts,
    });
    const list: ClusterEvent[] = [];
    events.set(m.localId, list);
    for (
      const t of [
        "NodeJoined",
        "NodeLeft",
        "NodeFailed",
        "NodeSuspect",
        "NodeRecovered",
        "NodeUpdated",
      ] as const
    ) m.addEventListener(t, (e) => list.push(e.detail));
    nodes.push(m);
  }
  for (const m of nodes) await m.start();
  const joins = nodes.slice(1).map((m) => m.join([nodes[0].localAddr]));
  await net.clock.advance(200);
  await Promise.all(joins);
  const ok = await net.clock.runUntilCondition(
    () => nodes.every((m) => m.members().filter((x) => x.state === "alive").length === n),
    30_000,
  );
  assert.ok(ok, "cluster did not converge");
  return {
    net,
    nodes,
    events,
    async close() {
      for (const m of nodes) await m.shutdown();
      await net.clock.advance(10);
    },
  };
}

Deno.test("protocol: a starved member is suspected, refutes when it wakes (buddy system), and is never declared failed", async () => {
  // Suspicion bounds 2 s (confirmed) .. 12 s: the 1 s starvation must end in a refutation.
  const c = await cluster(10, { suspicionMult: 10 });
  try {
    const victim = c.nodes[3];
    const before = victim.localMember().incarnation;
    // Starved for 1 s: long enough to be suspected (probes time out after 200 ms), shorter than
    // even a fully confirmed suspicion.
    c.net.pause(victim.localAddr, 1000);
    const suspected = () =>
      c.nodes.some((m) =>
        c.events.get(m.localId)!.some((e) =>
          e.type === "NodeSuspect" && e.node.id === victim.localId
        )
      );
    assert.ok(await c.net.clock.runUntilCondition(suspected, 5000), "never suspected");
    const s = [...c.events.values()].flat().find((e) =>
      e.type === "NodeSuspect" && e.node.id === victim.localId
    )!;
    assert.ok(s.type === "NodeSuspect" && typeof s.phi === "number");
    await c.net.clock.advance(15_000);
    assert.ok(victim.localMember().incarnation > before, "victim did not refute");
    assert.ok(victim.stats().refutations > 0);
    for (const m of c.nodes) {
      if (m === victim) continue;
      assert.equal(
        m.get(victim.localId)?.state,
        "alive",
        `${m.localId} sees ${m.get(victim.localId)?.state}`,
      );
      assert.ok(!c.events.get(m.localId)!.some((e) => e.type === "NodeFailed"));
    }
    assert.ok(
      [...c.events.values()].flat().some((e) =>
        e.type === "NodeRecovered" && e.node.id === victim.localId
      ),
    );
  } finally {
    await c.close();
  }
});

Deno.test("protocol: a crashed member stays a tombstone until reaped, and a stale sync does not resurrect it", async () => {
  const c = await cluster(6, { reapIntervalMs: 8000 });
  try {
    const victim = c.nodes[5];
    c.net.crash(victim.localAddr);
    const others = c.nodes.slice(0, 5);
    assert.ok(
      await c.net.clock.runUntilCondition(
        () => others.every((m) => m.get(victim.localId)?.state === "dead"),
        30_000,
      ),
    );
    // Tombstone kept (push-pull syncs keep running meanwhile: LOCAL syncs every 3 s).
    await c.net.clock.advance(4000);
    assert.ok(others.every((m) => m.get(victim.localId)?.state === "dead"));
    // Then reaped everywhere, and not brought back by anyone's state.
    assert.ok(
      await c.net.clock.runUntilCondition(
        () => others.every((m) => m.get(victim.localId) === undefined),
        20_000,
      ),
    );
    await c.net.clock.advance(10_000);
    assert.ok(others.every((m) => m.get(victim.localId) === undefined));
    for (const m of others) {
      const joinedAgain = c.events.get(m.localId)!.filter((e) =>
        e.type === "NodeJoined" && e.node.id === victim.localId
      );
      assert.ok(joinedAgain.length <= 1, "victim resurrected");
    }
  } finally {
    await c.close();
  }
});

Deno.test("protocol: a slow subscriber gets a bounded buffer and drops are counted; the iterator ends on shutdown", async () => {
  const c = await cluster(3);
  try {
    const a = c.nodes[0];
    const slow = a.subscribe({ bufferSize: 2 });
    const fast = a.subscribe();
    assert.throws(() => a.subscribe({ bufferSize: 0 }), (e) => RpcError.is(e, "invalid_argument"));
    // Generate tag updates from another node: each is one NodeUpdated at `a`.
    for (let i = 0; i < 6; i++) {
      c.nodes[1].setTags({ v: String(i) });
      await c.net.clock.advance(500);
    }
    assert.ok(a.stats().eventsDropped >= 4, `dropped ${a.stats().eventsDropped}`);
    const got: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await slow.next();
      assert.equal(r.done, false);
      got.push((r.value as ClusterEvent).type);
    }
    assert.deepEqual(got, ["NodeUpdated", "NodeUpdated"]);
    const fastSeen: ClusterEvent[] = [];
    for (let i = 0; i < 6; i++) fastSeen.push((await fast.next()).value as ClusterEvent);
    assert.deepEqual(
      fastSeen.map((e) => e.type === "NodeUpdated" ? e.node.tags.v : "?"),
      ["0", "1", "2", "3", "4", "5"],
    );
    await slow.return?.();
    const pending = fast.next();
    await a.shutdown();
    assert.equal((await pending).done, true);
  } finally {
    await c.close();
  }
});

Deno.test("protocol: user broadcasts reach every member; oversized ones are refused", async () => {
  const received = new Map<string, string[]>();
  const net = new SimNetwork({ seed: 5 });
  const nodes: ClusterMembership[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const t = net.createTransport();
      const id = `u${i}`;
      received.set(id, []);
      nodes.push(
        new ClusterMembership({
          id,
          profile: "LOCAL",
          transport: t,
          clock: t.clock,
          random: lcg(i + 9),
          onUserMessage: (p) => received.get(id)!.push(new TextDecoder().decode(p)),
        }),
      );
    }
    for (const m of nodes) await m.start();
    const joins = nodes.slice(1).map((m) => m.join([nodes[0].localAddr]));
    await net.clock.advance(100);
    await Promise.all(joins);
    await net.clock.advance(2000);
    nodes[2].broadcast(new TextEncoder().encode("hello cluster"));
    assert.ok(
      await net.clock.runUntilCondition(
        () => nodes.every((m, i) => i === 2 || received.get(m.localId)!.includes("hello cluster")),
        10_000,
      ),
      JSON.stringify([...received]) + JSON.stringify(nodes[2].stats()),
    );
    assert.throws(
      () => nodes[0].broadcast(new Uint8Array(2000)),
      (e) => RpcError.is(e, "invalid_argument"),
    );
  } finally {
    for (const m of nodes) await m.shutdown();
    await net.clock.advance(10);
  }
});

Deno.test("protocol: lifeguard: false keeps the health score at zero and uses the fixed minimum suspicion", async () => {
  const c = await cluster(6, { lifeguard: false });
  try {
    const victim = c.nodes[5];
    c.net.crash(victim.localAddr);
    assert.ok(
      await c.net.clock.runUntilCondition(
        () => c.nodes.slice(0, 5).every((m) => m.get(victim.localId)?.state === "dead"),
        30_000,
      ),
    );
    for (const m of c.nodes.slice(0, 5)) assert.equal(m.stats().awareness, 0);
    assert.ok(c.nodes.slice(0, 5).every((m) => m.stats().confirmations === 0));
  } finally {
    await c.close();
  }
});

Deno.test("protocol: config errors are explained", () => {
  for (
    const bad of [
      { probeTimeoutMs: 2000, probeIntervalMs: 1000 },
      { gossipNodes: 1.5 },
      { maxTagsBytes: 5000 },
      { id: "" },
      { bindPort: 70000 },
      { label: "x".repeat(300) },
      { tags: { a: "x".repeat(300) } },
    ] as ClusterMembershipOptions[]
  ) {
    assert.throws(() => new ClusterMembership(bad), (e) => RpcError.is(e, "invalid_argument"));
  }
});

Deno.test("protocol: under 20% datagram loss the reliable fallback probe keeps suspicions down and nobody fails", async () => {
  async function run(
    fallback: boolean,
  ): Promise<{ suspicions: number; failed: number; reliable: number }> {
    const c = await cluster(12, { reliableProbeFallback: fallback }, 11);
    try {
      c.net.setLoss(0.2);
      await c.net.clock.advance(60_000);
      const all = [...c.events.values()].flat();
      return {
        suspicions: c.nodes.reduce((a, m) => a + m.stats().suspicions, 0),
        failed: all.filter((e) => e.type === "NodeFailed").length,
        reliable: c.nodes.reduce((a, m) => a + m.stats().reliablePings, 0),
      };
    } finally {
      await c.close();
    }
  }
  const on = await run(true);
  const off = await run(false);
  assert.equal(on.failed, 0, JSON.stringify(on));
  assert.ok(on.reliable > 0);
  assert.equal(off.reliable, 0);
  assert.ok(on.suspicions < off.suspicions, `with ${on.suspicions} vs without ${off.suspicions}`);
});
