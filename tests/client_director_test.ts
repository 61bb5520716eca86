import assert from "node:assert/strict";
import { type CallContext, Director, RpcClient, RpcError } from "../mod.ts";
import { startCluster, stopAll } from "./client_helpers.ts";

Deno.test("Director forwards calls from a client outside the gossip, with deadline and metadata", async () => {
  const ctxOf = (id: string) => (_req: unknown, ctx: CallContext) => ({
    worker: id,
    deadline: ctx.deadline,
    meta: ctx.meta,
  });
  const nodes = await startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "w1", tags: { role: "worker" } },
    { id: "w2", tags: { role: "worker" } },
  ]);
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
