import assert from "node:assert/strict";
import { type CallContext, Director, RpcClient, RpcError } from "../mod.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";

Deno.test("Director forwards calls from a client outside the gossip, with deadline and metadata", async () => {
  const ctxOf = (id: string) => (_req: unknown, ctx: CallContext) => ({
    worker: id,
    deadline: ctx.deadline,
    meta: ctx.meta,
  });
  // A short tie streak: 20 calls made one at a time reach both workers (the default is 1023).
  const nodes = await startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "w1", tags: { role: "worker" } },
    { id: "w2", tags: { role: "worker" } },
  ], { tieStreak: 4 });
  nodes[1].register("ctx", ctxOf("w1"));
  nodes[2].register("ctx", ctxOf("w2"));
  nodes[1].registerServerStream("count", async function* (req) {
    for (let i = 0; i < (req as number); i++) yield { worker: "w1", i };
  });
  nodes[2].registerServerStream("count", async function* (req) {
    for (let i = 0; i < (req as number); i++) yield { worker: "w2", i };
  });
  const director = await Director.start({
    client: nodes[0].client,
    methods: { echo: { idempotent: true }, ctx: {} },
  });
  director.forwardServerStream("count");
  const caller = await RpcClient.connect({ hostname: "127.0.0.1", port: director.addr.port });
  try {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = await caller.call<{ worker: string; echo: number }>("echo", i, { timeoutMs: 5000 });
      assert.equal(r.echo, i);
      seen.add(r.worker);
    }
    assert.deepEqual([...seen].sort(), ["w1", "w2"]);
    assert.equal(director.forwarded, 20);

    const before = Date.now();
    const r = await caller.call<{ deadline?: number; meta: Record<string, string> }>(
      "ctx",
      null,
      { timeoutMs: 4000, meta: { trace: "abc" } },
    );
    assert.ok(r.deadline !== undefined, "the worker sees a deadline");
    assert.ok(
      r.deadline > before && r.deadline <= before + 4000 + 50,
      `deadline ${r.deadline - before}`,
    );
    assert.equal(r.meta.trace, "abc");

    const items: { worker: string; i: number }[] = [];
    for await (const item of caller.serverStream<{ worker: string; i: number }>("count", 5)) {
      items.push(item);
    }
    assert.deepEqual(items.map((x) => x.i), [0, 1, 2, 3, 4]);
    assert.equal(new Set(items.map((x) => x.worker)).size, 1, "one stream, one worker");

    await assert.rejects(caller.call("nope", 1), (e) => RpcError.is(e, "not_found"));
    assert.deepEqual(director.methods.sort(), ["count", "ctx", "echo"]);
  } finally {
    await caller.close();
    await director.close();
    await stopAll(nodes);
  }
});

Deno.test("Director reports unavailable naming the filter when no worker matches", async () => {
  const nodes = await startCluster([{ id: "director", tags: { role: "director" } }]);
  const director = await Director.start({ client: nodes[0].client, methods: ["echo"] });
  const caller = await RpcClient.connect({ hostname: "127.0.0.1", port: director.addr.port });
  try {
    await assert.rejects(
      caller.call("echo", 1, { timeoutMs: 5000 }),
      (e) => RpcError.is(e, "unavailable") && e.message.includes('"role=worker"'),
    );
  } finally {
    await caller.close();
    await director.close();
    await stopAll(nodes);
  }
});

Deno.test("Director with no explicit forward forwards any unary method, payloads and metadata intact", async () => {
  // A short tie streak: 20 calls made one at a time reach both workers (the default is 1023).
  const nodes = await startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "w1", tags: { role: "worker" } },
    { id: "w2", tags: { role: "worker" } },
  ], { tieStreak: 4 });
  for (const [i, n] of [nodes[1], nodes[2]].entries()) {
    n.register("inventory.v2/Lookup", (req, ctx) => ({
      worker: `w${i + 1}`,
      req,
      trace: ctx.meta.trace,
      hasDeadline: ctx.deadline !== undefined,
    }));
    n.register("bytes", (req) => req);
  }
  const director = await Director.start({ client: nodes[0].client });
  const caller = await RpcClient.connect({ hostname: "127.0.0.1", port: director.addr.port });
  try {
    assert.deepEqual(director.methods, [], "nothing named explicitly");
    const seen = new Set<string>();
    // One call at a time: a streak of 4 on one worker, then the other.
    for (let i = 0; i < 20; i++) {
      const r = await caller.call<
        { worker: string; req: unknown; trace: string; hasDeadline: boolean }
      >(
        "inventory.v2/Lookup",
        { sku: `s${i}`, qty: [i, null] },
        { timeoutMs: 5000, meta: { trace: `t${i}` } },
      );
      assert.deepEqual(r.req, { sku: `s${i}`, qty: [i, null] });
      assert.equal(r.trace, `t${i}`);
      assert.equal(r.hasDeadline, true);
      seen.add(r.worker);
    }
    assert.deepEqual([...seen].sort(), ["w1", "w2"], "balanced over both workers");
    const raw = new Uint8Array([0, 1, 2, 250, 255]);
    const back = await caller.call<Uint8Array>("bytes", raw, { timeoutMs: 5000 });
    assert.ok(back instanceof Uint8Array, "a Uint8Array stays bytes through the director");
    assert.deepEqual([...back], [...raw]);
    assert.equal(director.forwarded, 21);
  } finally {
    await caller.close();
    await director.close();
    await stopAll(nodes);
  }
});

Deno.test("Director: not_found from the worker propagates as not_found; handler errors keep their code", async () => {
  const nodes = await startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "w1", tags: { role: "worker" } },
  ]);
  nodes[1].register("deny", () => {
    throw new RpcError("invalid_argument", "bad sku");
  });
  const director = await Director.start({ client: nodes[0].client });
  const caller = await RpcClient.connect({ hostname: "127.0.0.1", port: director.addr.port });
  try {
    await assert.rejects(
      caller.call("no.such/Method", { x: 1 }, { timeoutMs: 5000 }),
      (e) => RpcError.is(e, "not_found") && e.message.includes("no.such/Method"),
    );
    await assert.rejects(
      caller.call("deny", 1, { timeoutMs: 5000 }),
      (e) => RpcError.is(e, "invalid_argument") && e.message.includes("bad sku"),
    );
    assert.equal(director.forwarded, 2, "both reached a worker");
    // not_found is the worker's answer, not a worker failure: no ejection, still routable.
    assert.equal(
      (await caller.call<{ worker: string }>("echo", 1, { timeoutMs: 5000 })).worker,
      "w1",
    );
    assert.equal(nodes[0].client.stats().ejections, 0);
  } finally {
    await caller.close();
    await director.close();
    await stopAll(nodes);
  }
});

Deno.test("Director allow-list forwards only the listed unknown methods; others get not_found unforwarded", async () => {
  const nodes = await startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "w1", tags: { role: "worker" } },
  ]);
  let secretCalls = 0;
  nodes[1].register("secret", () => ++secretCalls);
  const director = await Director.start({ client: nodes[0].client, allow: ["echo"] });
  const closed = await Director.start({ client: nodes[0].client, forwardUnknown: false });
  const caller = await RpcClient.connect({ hostname: "127.0.0.1", port: director.addr.port });
  const caller2 = await RpcClient.connect({ hostname: "127.0.0.1", port: closed.addr.port });
  try {
    assert.equal((await caller.call<{ echo: number }>("echo", 5, { timeoutMs: 5000 })).echo, 5);
    await assert.rejects(
      caller.call("secret", null, { timeoutMs: 5000 }),
      (e) => RpcError.is(e, "not_found") && e.message.includes("not forwarded"),
    );
    assert.equal(director.forwarded, 1, "the refused call never left the director");
    assert.equal(secretCalls, 0, "the worker never saw it");
    assert.equal(
      await nodes[0].client.callWorker("secret", null, {
        filter: "role=worker",
        timeoutMs: 5000,
      }),
      1,
    );
    await assert.rejects(
      caller2.call("echo", 1, { timeoutMs: 5000 }),
      (e) => RpcError.is(e, "not_found"),
    );
    assert.equal(closed.forwarded, 0);
  } finally {
    await caller.close();
    await caller2.close();
    await director.close();
    await closed.close();
    await stopAll(nodes);
  }
});

Deno.test("Director forward with a key function routes by the decoded request (consistent_hash)", async () => {
  const nodes = await startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "w1", tags: { role: "worker" } },
    { id: "w2", tags: { role: "worker" } },
    { id: "w3", tags: { role: "worker" } },
  ], { strategy: "consistent_hash" });
  const director = await Director.start({
    client: nodes[0].client,
    methods: { echo: { key: (req) => (req as { user: string }).user } },
  });
  const caller = await RpcClient.connect({ hostname: "127.0.0.1", port: director.addr.port });
  try {
    const owners = new Map<string, Set<string>>();
    for (let i = 0; i < 60; i++) {
      const user = `u${i % 6}`;
      const r = await caller.call<{ worker: string; echo: { user: string; i: number } }>(
        "echo",
        { user, i },
        { timeoutMs: 5000 },
      );
      assert.deepEqual(r.echo, { user, i }, "request passed through intact");
      if (!owners.has(user)) owners.set(user, new Set());
      owners.get(user)!.add(r.worker);
    }
    for (const [user, ws] of owners) assert.equal(ws.size, 1, `${user} always on one worker`);
    assert.ok(new Set([...owners.values()].map((s) => [...s][0])).size > 1, "keys spread");
  } finally {
    await caller.close();
    await director.close();
    await stopAll(nodes);
  }
});
