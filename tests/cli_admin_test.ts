/**
 * The admin service every Node serves ($cluster.*), through a plain RpcClient that never joins
 * the gossip.
 */
import assert from "node:assert/strict";
import { Node, RpcClient, RpcError, RpcServer } from "../mod.ts";
import {
  ADMIN_METHODS,
  type AdminEvent,
  type AdminHealth,
  type AdminMembers,
  type AdminStats,
  CallMeter,
  latencyQuantile,
} from "../src/client/admin.ts";
import { observeSingle } from "../src/rpc/call_observer.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";
import { waitFor } from "./_support/wait.ts";

function connectTo(node: Node, secret?: string): Promise<RpcClient> {
  const [hostname, port] = node.rpcAddr.split(":");
  return RpcClient.connect({ hostname, port: Number(port), secret, connectTimeoutMs: 3000 });
}

Deno.test("admin: $cluster.members, stats and health answer a plain RpcClient without adding a member", async () => {
  const nodes = await startCluster([
    { id: "seed", tags: { role: "seed" } },
    { id: "w1", tags: { role: "worker" } },
  ]);
  const client = await connectTo(nodes[0]);
  try {
    const reply = await client.call<AdminMembers>(ADMIN_METHODS.members, null);
    assert.equal(reply.self, "seed");
    assert.deepEqual(reply.members.map((m) => m.id), ["seed", "w1"]);
    const w1 = reply.members.find((m) => m.id === "w1")!;
    assert.equal(w1.state, "alive");
    assert.equal(w1.rpcAddr, nodes[1].rpcAddr);
    assert.equal(w1.gossipAddr, nodes[1].gossipAddr);
    assert.deepEqual(w1.tags, { role: "worker" });
    assert.equal(typeof w1.incarnation, "number");
    assert.equal(typeof w1.phi, "number");
    assert.ok(w1.sinceChangeMs >= 0);
    assert.equal(w1.local, false);
    assert.equal(reply.members.find((m) => m.id === "seed")!.local, true);

    const workers = await client.call<AdminMembers>(ADMIN_METHODS.members, {
      filter: "role=worker",
    });
    assert.deepEqual(workers.members.map((m) => m.id), ["w1"]);
    await assert.rejects(
      client.call(ADMIN_METHODS.members, { filter: "role=(" }),
      (e) => RpcError.is(e, "invalid_argument"),
    );

    // Calls served by user handlers are metered; admin calls are not.
    for (let i = 0; i < 5; i++) await client.call("echo", i);
    await assert.rejects(client.call("echo-missing", 0), (e) => RpcError.is(e, "not_found"));
    const stats = await client.call<AdminStats>(ADMIN_METHODS.stats, null);
    assert.equal(stats.id, "seed");
    assert.equal(stats.served.calls, 5);
    assert.equal(stats.served.errors, 0);
    const timed = stats.served.latencyCounts.reduce((a, b) => a + b, 0);
    assert.ok(timed >= 1 && timed <= 5, `timed ${timed}`); // latency is sampled
    assert.equal(stats.served.latencyCounts.length, stats.served.latencyBoundsMs.length + 1);
    assert.equal(stats.membership.liveMembers, 2);
    assert.ok(stats.server.callsTotal >= 6);
    assert.equal(typeof stats.client.perWorker, "object");

    const health = await client.call<AdminHealth>(ADMIN_METHODS.health, null);
    assert.equal(health.id, "seed");
    assert.equal(health.state, "alive");
    assert.equal(health.liveMembers, 2);

    // Looking did not add a member anywhere.
    for (const n of nodes) assert.equal(n.membership.members().length, 2);
  } finally {
    await client.close();
    await stopAll(nodes);
  }
});

Deno.test("admin: handler errors are counted in served.errors", async () => {
  const nodes = await startCluster([{ id: "solo", tags: {} }], {
    handlers: {
      boom: () => {
        throw new RpcError("internal", "boom");
      },
    },
  });
  const client = await connectTo(nodes[0]);
  try {
    await assert.rejects(client.call("boom", null), (e) => RpcError.is(e, "internal"));
    const late = nodes[0].registerServerStream("count", async function* () {
      yield 1;
      yield 2;
    });
    assert.ok(late);
    const got: unknown[] = [];
    for await (const v of client.serverStream("count", null)) got.push(v);
    assert.deepEqual(got, [1, 2]);
    const stats = await client.call<AdminStats>(ADMIN_METHODS.stats, null);
    assert.equal(stats.served.calls, 2);
    assert.equal(stats.served.errors, 1);
  } finally {
    await client.close();
    await stopAll(nodes);
  }
});

Deno.test("admin: $cluster.events streams subscribed, then joined and left", async () => {
  const nodes = await startCluster([{ id: "seed", tags: {} }]);
  const client = await connectTo(nodes[0]);
  const seen: AdminEvent[] = [];
  const ac = new AbortController();
  const reading = (async () => {
    try {
      for await (
        const e of client.serverStream<AdminEvent>(ADMIN_METHODS.events, null, {
          signal: ac.signal,
        })
      ) seen.push(e);
    } catch (e) {
      if (!RpcError.is(e, "cancelled")) throw e;
    }
  })();
  try {
    await waitFor(() => seen.length > 0, "the subscribed message");
    assert.deepEqual(seen[0].type, "subscribed");
    const late = await Node.start({
      id: "late",
      profile: "LOCAL",
      seeds: [nodes[0].gossipAddr],
      tags: { role: "worker" },
    });
    await waitFor(() => seen.some((e) => e.type === "joined"), "a joined event");
    const joined = seen.find((e) => e.type === "joined") as Extract<
      AdminEvent,
      { member: unknown }
    >;
    assert.equal(joined.member.id, "late");
    assert.deepEqual(joined.member.tags, { role: "worker" });
    await late.leave();
    await waitFor(() => seen.some((e) => e.type === "left"), "a left event");
  } finally {
    ac.abort();
    await reading;
    await client.close();
    await stopAll(nodes);
  }
});

Deno.test("admin: a node with a secret refuses an admin caller without it", async () => {
  const nodes = await startCluster([{ id: "seed", tags: {} }], { secret: "s3cret" });
  try {
    await assert.rejects(
      (async () => {
        const c = await connectTo(nodes[0]);
        try {
          await c.call(ADMIN_METHODS.members, null, { timeoutMs: 3000 });
        } finally {
          await c.close();
        }
      })(),
      (e) => RpcError.is(e, "unauthenticated"),
    );
    const ok = await connectTo(nodes[0], "s3cret");
    try {
      const r = await ok.call<AdminMembers>(ADMIN_METHODS.members, null);
      assert.deepEqual(r.members.map((m) => m.id), ["seed"]);
    } finally {
      await ok.close();
    }
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("admin: $cluster.* names are reserved for user handlers", async () => {
  const server = new RpcServer();
  assert.throws(
    () => server.register("$cluster.members", () => 1),
    (e) => RpcError.is(e, "invalid_argument") && /reserved/.test(e.message),
  );
  assert.throws(
    () => server.registerServerStream("$cluster.events", async function* () {}),
    (e) => RpcError.is(e, "invalid_argument"),
  );
  await assert.rejects(
    Node.start({ profile: "LOCAL", handlers: { "$cluster.stats": () => 1 } }),
    (e) => RpcError.is(e, "invalid_argument"),
  );
  server.register("$other", () => 1); // only the $cluster. prefix is reserved
});

Deno.test("admin: every call is counted, durations are sampled at high rates", async () => {
  const meter = new CallMeter();
  const sync = observeSingle("sync", (r: unknown) => r, meter.record);
  for (let i = 0; i < 100_000; i++) sync(i);
  let s = meter.snapshot();
  assert.equal(s.calls, 100_000);
  const timed = s.latencyCounts.reduce((a, b) => a + b, 0);
  assert.ok(timed > 0 && timed < 100_000 / 16, `timed ${timed} of 100000 back-to-back calls`);

  const spaced = new CallMeter();
  const fails = observeSingle("fails", async (): Promise<never> => {
    await new Promise((r) => setTimeout(r, 12));
    throw new RpcError("internal", "no");
  }, spaced.record);
  for (let i = 0; i < 5; i++) await assert.rejects(fails());
  s = spaced.snapshot();
  assert.equal(s.calls, 5);
  assert.equal(s.errors, 5);
  // Calls more than 10 ms apart are all timed, and land in the 12 ms area of the histogram.
  assert.equal(s.latencyCounts.reduce((a, b) => a + b, 0), 5);
  assert.ok(latencyQuantile(s.latencyBoundsMs, s.latencyCounts, 0.5)! >= 12);
});

Deno.test("admin: latencyQuantile reads a histogram's bucket bounds", () => {
  const bounds = [1, 2, 4];
  assert.equal(latencyQuantile(bounds, [0, 0, 0, 0], 0.5), undefined);
  assert.equal(latencyQuantile(bounds, [10, 0, 0, 0], 0.99), 1);
  assert.equal(latencyQuantile(bounds, [50, 49, 1, 0], 0.5), 1);
  assert.equal(latencyQuantile(bounds, [50, 49, 1, 0], 0.99), 2);
  assert.equal(latencyQuantile(bounds, [50, 40, 0, 10], 0.99), Infinity);
});
