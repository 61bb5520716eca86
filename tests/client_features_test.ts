import assert from "node:assert/strict";
import { type Balancer, ClusterClient, Node, RpcError, WorkerRegistry } from "../mod.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";
import { sleep, waitFor } from "./_support/wait.ts";

async function* nums() {
  yield* [1, 2, 3, 4];
}

function cluster() {
  return startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "w1", tags: { role: "worker" } },
    { id: "w2", tags: { role: "worker" } },
  ]);
}

Deno.test("ClusterClient streams to one selected worker (server, client and bidi)", async () => {
  const nodes = await cluster();
  for (const n of nodes.slice(1)) {
    n.registerServerStream("range", async function* (req) {
      for (let i = 0; i < (req as number); i++) yield { worker: n.id, i };
    });
    n.registerClientStream("sum", async (reqs) => {
      let s = 0;
      for await (const x of reqs) s += x as number;
      return { worker: n.id, sum: s };
    });
    n.registerBidiStream("double", async function* (reqs) {
      for await (const x of reqs) yield { worker: n.id, v: (x as number) * 2 };
    });
  }
  const client = nodes[0].client;
  try {
    const got = [];
    for await (
      const x of client.serverStream<{ i: number }>("range", 4, { filter: "role=worker" })
    ) {
      got.push(x.i);
    }
    assert.deepEqual(got, [0, 1, 2, 3]);
    const sum = await client.clientStream<{ sum: number }>("sum", nums(), {
      filter: "role=worker",
    });
    assert.equal(sum.sum, 10);
    const doubled = [];
    const workersSeen = new Set<string>();
    for await (
      const x of client.bidiStream<{ v: number; worker: string }>("double", nums(), {
        filter: "role=worker",
      })
    ) {
      doubled.push(x.v);
      workersSeen.add(x.worker);
    }
    assert.deepEqual(doubled, [2, 4, 6, 8]);
    assert.equal(workersSeen.size, 1);
    for (const id of ["w1", "w2"]) assert.equal(client.stats().perWorker[id]?.active ?? 0, 0);
    assert.equal(
      nodes[0].registry.balancer.active("w1") + nodes[0].registry.balancer.active("w2"),
      0,
    );
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("pooled connections are reused, and closed once idle", async () => {
  const nodes = await cluster();
  const registry = new WorkerRegistry(nodes[0].membership, { strategy: "round_robin" });
  const client = new ClusterClient(registry, { idleTimeoutMs: 150 });
  try {
    for (let i = 0; i < 20; i++) await client.callWorker("echo", i, { filter: "role=worker" });
    assert.equal(client.stats().connections, 2, "one connection per worker, reused");
    await waitFor(() => client.stats().connections === 0, "idle connections to close");
    await client.callWorker("echo", 1, { filter: "role=worker" });
    assert.equal(client.stats().connections, 1, "a new connection after idling out");
  } finally {
    await client.close();
    registry.close();
    await stopAll(nodes);
  }
});

Deno.test("outlier ejection: consecutive failures take a worker out, it returns after the back-off", async () => {
  const nodes = await cluster();
  nodes[1].register("flaky", () => {
    throw new RpcError("unavailable", "w1 is sick");
  });
  nodes[2].register("flaky", () => "w2");
  const registry = new WorkerRegistry(nodes[0].membership, { strategy: "round_robin" });
  const client = new ClusterClient(registry, {
    outlier: { consecutiveFailures: 3, baseEjectionMs: 60_000, maxEjectionPercent: 50 },
  });
  try {
    let failures = 0;
    for (let i = 0; i < 40; i++) {
      try {
        assert.equal(await client.callWorker("flaky", i, { filter: "role=worker" }), "w2");
      } catch (e) {
        assert.ok(RpcError.is(e, "unavailable"));
        failures++;
      }
    }
    assert.equal(failures, 3, "exactly the three failures that triggered the ejection");
    assert.equal(client.stats().ejections, 1);
    assert.ok((registry.balancer as Balancer).isEjected("w1"));
    // Ejection is local to this client and independent of gossip: w1 is still alive.
    assert.equal(nodes[0].membership.get("w1")?.state, "alive");
    // Idempotent calls on a healthy pool never see the sick worker's errors.
    const retrying = new WorkerRegistry(nodes[0].membership, { strategy: "round_robin" });
    const c2 = new ClusterClient(retrying, {
      outlier: { baseEjectionMs: 200, consecutiveFailures: 2 },
    });
    try {
      for (let i = 0; i < 20; i++) {
        assert.equal(
          await c2.callWorker("flaky", i, { filter: "role=worker", idempotent: true }),
          "w2",
        );
      }
      assert.ok(c2.stats().retries >= 1);
      assert.ok(c2.stats().ejections >= 1);
      // After the back-off, w1 is tried again (and fails over again).
      await waitFor(() => !(retrying.balancer as Balancer).isEjected("w1"), "w1's back-off to end");
      const before = c2.stats().perWorker.w1.calls;
      for (let i = 0; i < 4; i++) {
        await c2.callWorker("flaky", i, { filter: "role=worker", idempotent: true });
      }
      assert.ok(c2.stats().perWorker.w1.calls > before, "w1 re-admitted after its back-off");
    } finally {
      await c2.close();
      retrying.close();
    }
  } finally {
    await client.close();
    registry.close();
    await stopAll(nodes);
  }
});

Deno.test("an exhausted retry budget stops failover", async () => {
  const nodes = await cluster();
  nodes[1].register("down", () => {
    throw new RpcError("unavailable", "down");
  });
  nodes[2].register("down", () => {
    throw new RpcError("unavailable", "down");
  });
  const registry = new WorkerRegistry(nodes[0].membership, { strategy: "round_robin" });
  const client = new ClusterClient(registry, {
    retryBudget: { minRetriesPerSec: 0, percentCanRetry: 0.5 },
    outlier: { consecutiveFailures: 1000 },
  });
  try {
    for (let i = 0; i < 10; i++) {
      await assert.rejects(
        client.callWorker("down", i, { filter: "role=worker", idempotent: true }),
        (e) => RpcError.is(e, "unavailable"),
      );
    }
    const s = client.stats();
    assert.equal(s.calls, 10);
    assert.equal(s.failed, 10);
    assert.ok(s.retries <= 5, `50% budget allows at most 5 retries for 10 calls, saw ${s.retries}`);
    assert.ok(s.budgetExhausted >= 5);
  } finally {
    await client.close();
    registry.close();
    await stopAll(nodes);
  }
});

Deno.test("deadlines: a call past its deadline is deadline_exceeded and is not failed over", async () => {
  const nodes = await cluster();
  let started = 0;
  for (const n of nodes.slice(1)) {
    n.register("slow", async (_req, ctx) => {
      started++;
      await new Promise<void>((r) => {
        const t = setTimeout(r, 10_000);
        ctx.signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
      });
      return "late";
    });
  }
  try {
    await assert.rejects(
      nodes[0].client.callWorker("slow", 1, {
        filter: "role=worker",
        timeoutMs: 200,
        idempotent: true,
      }),
      (e) => RpcError.is(e, "deadline_exceeded"),
    );
    assert.equal(started, 1);
    await assert.rejects(
      nodes[0].client.callWorker("slow", 1, { filter: "role=worker", deadline: Date.now() - 1 }),
      (e) => RpcError.is(e, "deadline_exceeded"),
    );
    assert.equal(started, 1, "an expired deadline is not even sent");
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("a new worker receives traffic within 2 s of joining (LOCAL profile)", async () => {
  const nodes = await cluster();
  let stop = false;
  const load = (async () => {
    while (!stop) {
      await nodes[0].client.callWorker("echo", 1, { filter: "role=worker", timeoutMs: 5000 });
      await sleep(5);
    }
  })();
  let late: Node | undefined;
  try {
    await sleep(200);
    late = await Node.start({
      id: "w3",
      profile: "LOCAL",
      tags: { role: "worker" },
      seeds: [nodes[0].gossipAddr],
      handlers: { echo: () => ({ worker: "w3" }) },
    });
    const joinedAt = Date.now();
    await waitFor(() => (nodes[0].client.stats().perWorker.w3?.calls ?? 0) > 0, "w3 traffic", {
      timeoutMs: 5000,
    });
    const after = Date.now() - joinedAt;
    assert.ok(after <= 2000, `first call reached w3 ${after} ms after it joined`);
  } finally {
    stop = true;
    await load;
    await late?.stop();
    await stopAll(nodes);
  }
});

Deno.test("a worker that leaves gracefully stops receiving calls and finishes its calls in flight", async () => {
  const nodes = await cluster();
  const extra = await Node.start({
    id: "w3",
    profile: "LOCAL",
    tags: { role: "worker", name: "w3" },
    seeds: [nodes[0].gossipAddr],
    handlers: {
      echo: () => ({ worker: "w3" }),
      slow: () => sleep(1500).then(() => "finished while leaving"),
    },
  });
  await waitFor(() => nodes[0].registry.workers("role=worker").length === 3, "w3 visible");
  let stop = false;
  let failed = 0;
  const loops = Array.from({ length: 4 }, async () => {
    while (!stop) {
      try {
        await nodes[0].client.callWorker("echo", 1, {
          filter: "role=worker",
          idempotent: true,
          timeoutMs: 5000,
        });
      } catch {
        failed++;
      }
    }
  });
  try {
    await sleep(200);
    // Not idempotent, in flight while w3 leaves: w3 drains it, so it must succeed.
    const inFlight = nodes[0].client.callWorker("slow", null, {
      filter: "name=w3",
      timeoutMs: 10_000,
    });
    await sleep(50);
    await extra.leave();
    await waitFor(() => nodes[0].registry.workers("role=worker").length === 2, "w3 gone");
    assert.equal(await inFlight, "finished while leaving");
    // Its counters are pruned once its last call ends, and no new call recreates them.
    await waitFor(() => !("w3" in nodes[0].client.stats().perWorker), "w3's counters pruned");
    await sleep(200);
    assert.ok(!("w3" in nodes[0].client.stats().perWorker), "no call reached w3 after it left");
    assert.equal(failed, 0);
  } finally {
    stop = true;
    await Promise.all(loops);
    await stopAll(nodes);
  }
});
