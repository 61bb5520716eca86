import assert from "node:assert/strict";
import { type CallContext, RpcClient, RpcError, RpcServer } from "../mod.ts";
import { waitFor } from "./_support/wait.ts";

/** Polls `cond` until true or `ms` pass (robust on a loaded machine; no fixed sleeps). */

async function setup(
  server: RpcServer,
  clientOptions: Partial<Parameters<typeof RpcClient.connect>[0]> = {},
): Promise<{ client: RpcClient; done: () => Promise<void> }> {
  await server.start();
  const client = await RpcClient.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
    ...clientOptions,
  });
  return {
    client,
    done: async () => {
      await client.close();
      await server.close();
    },
  };
}

Deno.test("rpc: values round-trip through MessagePack and Uint8Array passes through as bytes", async () => {
  const seen: unknown[] = [];
  const server = new RpcServer().register("echo", (req) => {
    seen.push(req);
    return req;
  });
  const { client, done } = await setup(server);
  try {
    const values = [
      { a: 1, b: "two", c: [3, 4.5, null, true], d: { nested: new Uint8Array([9, 8]) } },
      "héllo ✓",
      -42,
      2 ** 40,
      null,
      [],
      undefined,
    ];
    for (const v of values) assert.deepEqual(await client.call("echo", v), v);
    const bytes = crypto.getRandomValues(new Uint8Array(3000));
    const back = await client.call<Uint8Array>("echo", bytes);
    assert.ok(back instanceof Uint8Array);
    assert.deepEqual(back, bytes);
    assert.ok(seen.at(-1) instanceof Uint8Array, "the handler receives the raw bytes");
    const big = new Uint8Array(1 << 20).map((_, i) => (i * 7919) & 0xff);
    assert.deepEqual(await client.call("echo", big), big);
  } finally {
    await done();
  }
});

Deno.test("rpc: 10,000 concurrent calls over the lanes are all answered with their own result", async () => {
  const server = new RpcServer().register("double", async (req) => {
    const n = req as number;
    if (n % 7 === 0) await new Promise((r) => setTimeout(r, 1)); // reorder some answers
    return { n, twice: n * 2 };
  });
  const { client, done } = await setup(server, { lanes: 4 });
  try {
    const results = await Promise.all(
      Array.from(
        { length: 10_000 },
        (_, i) => client.call<{ n: number; twice: number }>("double", i),
      ),
    );
    results.forEach((r, i) => assert.deepEqual(r, { n: i, twice: 2 * i }));
    assert.equal(server.stats().callsTotal, 10_000);
    assert.equal(server.stats().activeCalls, 0);
  } finally {
    await done();
  }
});

Deno.test("rpc: unknown method gives not_found and the connection keeps working", async () => {
  const server = new RpcServer().register("known", () => "ok");
  const { client, done } = await setup(server);
  try {
    await assert.rejects(
      client.call("nope", 1),
      (e) => RpcError.is(e, "not_found") && /nope/.test(e.message),
    );
    assert.equal(await client.call("known", null), "ok");
  } finally {
    await done();
  }
});

Deno.test("rpc: a throwing handler gives internal with its message; an RpcError keeps its code", async () => {
  const server = new RpcServer()
    .register("boom", () => {
      throw new Error("kaboom 42");
    })
    .register("asyncBoom", () => Promise.reject(new TypeError("async kaboom")))
    .register("typed", () => {
      throw new RpcError("invalid_argument", "bad input x");
    })
    .register("ok", () => 1);
  const { client, done } = await setup(server);
  try {
    await assert.rejects(
      client.call("boom", null),
      (e) => RpcError.is(e, "internal") && e.message === "kaboom 42",
    );
    await assert.rejects(client.call("asyncBoom", null), (e) => RpcError.is(e, "internal"));
    await assert.rejects(
      client.call("typed", null),
      (e) => RpcError.is(e, "invalid_argument") && e.message === "bad input x",
    );
    assert.equal(await client.call("ok", null), 1);
  } finally {
    await done();
  }
});

Deno.test("rpc: a timeout gives deadline_exceeded and aborts the handler's signal", async () => {
  let handlerReason: unknown;
  let deadlineSeen: number | undefined;
  const server = new RpcServer().register("slow", (_req, ctx: CallContext) => {
    deadlineSeen = ctx.deadline;
    return new Promise((resolve) => {
      ctx.signal.addEventListener("abort", () => {
        handlerReason = ctx.signal.reason;
        resolve("late");
      });
    });
  });
  const { client, done } = await setup(server);
  try {
    const before = Date.now();
    await assert.rejects(
      client.call("slow", null, { timeoutMs: 150 }),
      (e) => RpcError.is(e, "deadline_exceeded"),
    );
    await waitFor(() => handlerReason !== undefined, "the handler's abort");
    assert.ok(RpcError.is(handlerReason, "deadline_exceeded"));
    assert.ok(deadlineSeen !== undefined && deadlineSeen >= before + 100);
    await waitFor(() => server.stats().activeCalls === 0, "no active calls at the server");
  } finally {
    await done();
  }
});

Deno.test("rpc: aborting the caller's signal gives cancelled and cancels the handler", async () => {
  let handlerReason: unknown;
  let started = false;
  const server = new RpcServer().register("wait", (_req, ctx) => {
    started = true;
    return new Promise((resolve) => {
      ctx.signal.addEventListener("abort", () => {
        handlerReason = ctx.signal.reason;
        resolve(null);
      });
    });
  });
  const { client, done } = await setup(server);
  try {
    const ac = new AbortController();
    const p = client.call("wait", null, { signal: ac.signal, meta: { who: "test" } });
    await waitFor(() => started, "the handler to start");
    ac.abort();
    await assert.rejects(p, (e) => RpcError.is(e, "cancelled"));
    await waitFor(() => handlerReason !== undefined, "the handler's abort");
    assert.ok(RpcError.is(handlerReason, "cancelled"));
    await assert.rejects(
      client.call("wait", null, { signal: AbortSignal.abort() }),
      (e) => RpcError.is(e, "cancelled"),
    );
  } finally {
    await done();
  }
});

Deno.test("rpc: call metadata and the caller address reach the handler", async () => {
  const server = new RpcServer().register(
    "whoami",
    (_req, ctx) => ({ meta: ctx.meta, method: ctx.method, addr: ctx.remoteAddr }),
  );
  const { client, done } = await setup(server);
  try {
    const r = await client.call<{ meta: Record<string, string>; method: string; addr: string }>(
      "whoami",
      null,
      { meta: { trace: "abc", tenant: "t1" } },
    );
    assert.deepEqual(r.meta, { trace: "abc", tenant: "t1" });
    assert.equal(r.method, "whoami");
    assert.match(r.addr, /^127\.0\.0\.1:\d+$/);
  } finally {
    await done();
  }
});

Deno.test("rpc: oversized requests and responses give resource_exhausted on both sides", async () => {
  const server = new RpcServer({ maxFrameBytes: 64 * 1024 })
    .register("echo", (r) => r)
    .register("big", () => new Uint8Array(100 * 1024))
    .register("bigText", () => "y".repeat(100 * 1024));
  const { client, done } = await setup(server, { maxFrameBytes: 1024 * 1024 });
  try {
    // The same for MessagePack values, which are encoded straight into the lane's batch when
    // they fit there: past a limit they are refused all the same.
    await assert.rejects(
      client.call("echo", "x".repeat(200 * 1024)),
      (e) => RpcError.is(e, "resource_exhausted"),
    );
    await assert.rejects(
      client.call("echo", { s: "x".repeat(2 * 1024 * 1024) }),
      (e) => RpcError.is(e, "resource_exhausted") && /request of \d+ bytes/.test(e.message),
    );
    await assert.rejects(client.call("bigText", null), (e) => RpcError.is(e, "resource_exhausted"));
    assert.equal(await client.call("echo", "x".repeat(60 * 1024)), "x".repeat(60 * 1024));
    // Server-side limit: the client may send it, the server refuses without reading a handler.
    await assert.rejects(
      client.call("echo", new Uint8Array(200 * 1024)),
      (e) => RpcError.is(e, "resource_exhausted"),
    );
    // Client-side limit: checked before sending.
    await assert.rejects(
      client.call("echo", new Uint8Array(2 * 1024 * 1024)),
      (e) => RpcError.is(e, "resource_exhausted"),
    );
    await assert.rejects(client.call("big", null), (e) => RpcError.is(e, "resource_exhausted"));
    assert.deepEqual(await client.call("echo", "still fine"), "still fine");
    assert.ok(server.stats().rejectedCalls >= 1);
    assert.equal(server.stats().protocolErrors, 0);
  } finally {
    await done();
  }
});

Deno.test("rpc: calls past maxConcurrentCallsPerConnection give resource_exhausted", async () => {
  const release: (() => void)[] = [];
  const server = new RpcServer({ maxConcurrentCallsPerConnection: 2 }).register(
    "hold",
    () => new Promise<string>((r) => release.push(() => r("done"))),
  );
  const { client, done } = await setup(server);
  try {
    const a = client.call("hold", 1);
    const b = client.call("hold", 2);
    await waitFor(() => release.length === 2, "both calls in their handlers");
    await assert.rejects(client.call("hold", 3), (e) => RpcError.is(e, "resource_exhausted"));
    release.forEach((r) => r());
    assert.deepEqual(await Promise.all([a, b]), ["done", "done"]);
  } finally {
    await done();
  }
});

Deno.test("rpc: bad arguments are typed errors, never crashes", async () => {
  assert.throws(() => new RpcServer({ port: 70000 }), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(
    () => new RpcServer().register("", () => 1),
    (e) => RpcError.is(e, "invalid_argument"),
  );
  assert.throws(
    () => new RpcServer().register("a", () => 1).register("a", () => 2),
    (e) => RpcError.is(e, "invalid_argument"),
  );
  await assert.rejects(
    RpcClient.connect({ hostname: "127.0.0.1", port: 0 }),
    (e) => RpcError.is(e, "invalid_argument"),
  );
  const server = new RpcServer().register("echo", (r) => r);
  const { client, done } = await setup(server);
  try {
    await assert.rejects(
      client.call("echo", { f: () => 1 } as unknown),
      (e) => RpcError.is(e) && e.code === "invalid_argument",
    );
    await assert.rejects(
      client.call("x".repeat(300), 1),
      (e) => RpcError.is(e, "invalid_argument"),
    );
    await assert.rejects(
      client.call("echo", 1, { timeoutMs: -5 }),
      (e) => RpcError.is(e, "invalid_argument"),
    );
    assert.equal(await client.call("echo", 7), 7);
  } finally {
    await done();
  }
});
