import assert from "node:assert/strict";
import { ClusterClient, Node, RpcError, WorkerRegistry } from "../mod.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";

Deno.test("Node: a cluster secret protects every node's RPC and the client proves it", async () => {
  const nodes = await startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "w1", tags: { role: "worker" } },
  ], { secret: "s3cret" });
  const registry = new WorkerRegistry(nodes[0].membership);
  const outsider = new ClusterClient(registry, { connectTimeoutMs: 2000 }); // no secret
  try {
    const r = await nodes[0].client.callWorker<{ worker: string }>("echo", 1, {
      filter: "role=worker",
    });
    assert.equal(r.worker, "w1");
    await assert.rejects(
      outsider.callWorker("echo", 1, { filter: "role=worker", timeoutMs: 5000 }),
      (e) => RpcError.is(e, "unauthenticated"),
    );
  } finally {
    await outsider.close();
    registry.close();
    await stopAll(nodes);
  }
});

Deno.test("Node.start with unreachable seeds and requireJoin fails with unavailable and releases everything", async () => {
  await assert.rejects(
    Node.start({
      profile: "LOCAL",
      seeds: ["127.0.0.1:9"],
      joinWaitMs: 300,
      requireJoin: true,
    }),
    (e) => RpcError.is(e, "unavailable") && /joinWaitMs/.test(e.message),
  );
});

Deno.test("Node.start with seeds not up yet returns after joinWaitMs, not ready, and joins once a seed starts", async () => {
  // Reserve a gossip port for the seed that starts late: bind, note the port, release it.
  const probe = await Node.start({ profile: "LOCAL" });
  const seedAddr = probe.gossipAddr;
  const port = Number(seedAddr.slice(seedAddr.lastIndexOf(":") + 1));
  await probe.stop();
  const t0 = performance.now();
  const late = await Node.start({ profile: "LOCAL", seeds: [seedAddr], joinWaitMs: 200 });
  let seed: Node | undefined;
  try {
    assert.ok(performance.now() - t0 < 3000, "start returned without waiting out a bootstrap");
    assert.equal(late.ready, false);
    seed = await Node.start({ profile: "LOCAL", gossipPort: port });
    await late.whenReady(10_000);
    assert.equal(late.ready, true);
    assert.ok(late.membership.get(seed.id), "the late seed is a member");
  } finally {
    await late.stop();
    await seed?.stop();
  }
});

Deno.test("Node exposes its addresses, registers handlers at runtime and updates tags by gossip", async () => {
  const nodes = await startCluster([
    { id: "a", tags: { role: "worker", zone: "eu-1", name: "a" } },
    { id: "b", tags: { role: "worker", zone: "eu-1", name: "b" } },
  ]);
  try {
    const [a, b] = nodes;
    assert.equal(a.id, "a");
    assert.match(a.rpcAddr, /^127\.0\.0\.1:\d+$/);
    assert.match(a.gossipAddr, /^127\.0\.0\.1:\d+$/);
    b.register("late", () => "registered after start");
    assert.equal(
      await a.client.callWorker("late", null, { filter: "name=b" }),
      "registered after start",
    );
    b.setTags({ role: "worker", zone: "eu-2", name: "b" });
    const until = Date.now() + 10_000;
    while (a.registry.workers("zone=eu-2").length === 0) {
      if (Date.now() > until) throw new Error("tag update never arrived");
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(
      await a.client.callWorker("late", null, { filter: "zone=eu-2" }),
      "registered after start",
    );
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("ClusterClient rejects bad options and calls after close", async () => {
  const nodes = await startCluster([{ id: "solo", tags: { role: "worker" } }]);
  try {
    assert.throws(
      () => new ClusterClient(nodes[0].registry, { maxAttempts: 0 }),
      (e) => RpcError.is(e, "invalid_argument"),
    );
    assert.throws(
      () => new ClusterClient(nodes[0].registry, { retryBudget: { percentCanRetry: 2 } }),
      (e) => RpcError.is(e, "invalid_argument"),
    );
    await assert.rejects(
      nodes[0].client.callWorker("echo", 1, { timeoutMs: -5 }),
      (e) => RpcError.is(e, "invalid_argument"),
    );
    const c = new ClusterClient(nodes[0].registry);
    await c.close();
    await assert.rejects(c.callWorker("echo", 1), (e) => RpcError.is(e, "unavailable"));
  } finally {
    await stopAll(nodes);
  }
});
