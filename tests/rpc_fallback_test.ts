import assert from "node:assert/strict";
import { encode } from "@msgpack/msgpack";
import { type CallContext, EncodedPayload, RpcClient, RpcError, RpcServer } from "../mod.ts";

async function setup(server: RpcServer): Promise<{ client: RpcClient; done: () => Promise<void> }> {
  await server.start();
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
  return {
    client,
    done: async () => {
      await client.close();
      await server.close();
    },
  };
}

Deno.test("rpc fallback: calls to unregistered unary methods reach the fallback with method, decoded request and ctx", async () => {
  const seen: { method: string; request: unknown; meta: Record<string, string> }[] = [];
  const server = new RpcServer()
    .register("known", () => "from known")
    .registerServerStream("stream", async function* () {
      yield 1;
    })
    .registerFallback((method, request, ctx: CallContext) => {
      seen.push({ method, request, meta: { ...ctx.meta } });
      if (method === "missing") throw new RpcError("not_found", "fallback does not serve it");
      return { method, request, hasDeadline: ctx.deadline !== undefined, same: ctx.method };
    });
  const { client, done } = await setup(server);
  try {
    assert.equal(await client.call("known", 1), "from known");
    assert.deepEqual(
      await client.call("any.method/at-all", { a: [1, 2] }, {
        timeoutMs: 5000,
        meta: { k: "v" },
      }),
      {
        method: "any.method/at-all",
        request: { a: [1, 2] },
        hasDeadline: true,
        same: "any.method/at-all",
      },
    );
    assert.deepEqual(seen, [{
      method: "any.method/at-all",
      request: { a: [1, 2] },
      meta: { k: "v" },
    }]);
    // A fallback may refuse with not_found; a Uint8Array request stays bytes.
    await assert.rejects(client.call("missing", null), (e) => RpcError.is(e, "not_found"));
    const bytes = await client.call<{ request: Uint8Array }>("bin", new Uint8Array([1, 2, 3]));
    assert.deepEqual([...bytes.request], [1, 2, 3]);
    // A unary call to a method registered as a stream is not the fallback's.
    await assert.rejects(client.call("stream", null), (e) => RpcError.is(e, "not_found"));
    assert.equal(seen.length, 3);
    // Streaming calls to unknown methods are not covered by the unary fallback.
    await assert.rejects(
      (async () => {
        for await (const _ of client.serverStream("nostream", null)) { /* none */ }
      })(),
      (e) => RpcError.is(e, "not_found"),
    );
    assert.equal(seen.length, 3);
  } finally {
    await done();
  }
});

Deno.test("rpc fallback: without one, unknown methods give not_found; a second one is refused", async () => {
  const server = new RpcServer().register("known", () => 1);
  const { client, done } = await setup(server);
  try {
    await assert.rejects(client.call("unknown", 1), (e) => RpcError.is(e, "not_found"));
    assert.equal(await client.call("known", 0), 1);
  } finally {
    await done();
  }
  const s2 = new RpcServer().registerFallback(() => 1);
  assert.throws(() => s2.registerFallback(() => 2), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(
    () => new RpcServer().registerFallback(42 as unknown as () => void),
    (e) => RpcError.is(e, "invalid_argument"),
  );
});

Deno.test("rpc fallback: encoded mode passes request and response bytes through undecoded", async () => {
  const received: EncodedPayload[] = [];
  const worker = new RpcServer().register("echo", (req) => ({ echo: req }));
  await worker.start();
  const upstream = await RpcClient.connect({ hostname: "127.0.0.1", port: worker.addr.port });
  // A proxy: forwards whatever it gets, encoded both ways.
  const proxy = new RpcServer().registerFallback((method, request, ctx) => {
    received.push(request as EncodedPayload);
    return upstream.call(method, request, { encoded: true, signal: ctx.signal });
  }, { encoded: true });
  const { client, done } = await setup(proxy);
  try {
    const value = { n: 7, s: "hi", list: [1, "two", null] };
    assert.deepEqual(await client.call("echo", value), { echo: value });
    assert.ok(received[0] instanceof EncodedPayload);
    assert.equal(received[0].isRawBytes, false);
    assert.deepEqual([...received[0].bytes], [...encode(value)], "the wire bytes, not a value");
    assert.deepEqual(received[0].decode(), value);

    const raw = new Uint8Array([9, 8, 7, 0, 255]);
    const back = await client.call<{ echo: Uint8Array }>("echo", raw);
    assert.deepEqual([...back.echo], [...raw]);
    assert.equal(received[1].isRawBytes, true);
    assert.deepEqual([...received[1].bytes], [...raw]);

    assert.equal(await client.call("echo", undefined).then((r) => "echo" in (r as object)), true);
    assert.equal(received[2].bytes.length, 0);
    assert.equal(received[2].decode(), undefined);

    // The upstream's not_found comes back through the proxy as not_found.
    await assert.rejects(client.call("nope", 1), (e) => RpcError.is(e, "not_found"));

    // A caller may also ask for the response undecoded, and send an EncodedPayload itself.
    const enc = await client.call<EncodedPayload>(
      "echo",
      new EncodedPayload(encode({ pre: "encoded" })),
      { encoded: true },
    );
    assert.ok(enc instanceof EncodedPayload);
    assert.deepEqual(enc.decode(), { echo: { pre: "encoded" } });
    assert.deepEqual([...enc.bytes], [...encode({ echo: { pre: "encoded" } })]);
    assert.throws(
      () => new EncodedPayload(new Uint8Array([0xc1])).decode(),
      (e) => RpcError.is(e, "invalid_argument"),
    );
  } finally {
    await done();
    await upstream.close();
    await worker.close();
  }
});

Deno.test("rpc register({encoded: true}): a named handler gets the request's wire bytes", async () => {
  let got: EncodedPayload | undefined;
  const server = new RpcServer()
    .register("raw", (req) => {
      got = req as EncodedPayload;
      return req; // returned as is: the caller decodes its own bytes
    }, { encoded: true })
    .register("plain", (req) => req);
  const { client, done } = await setup(server);
  try {
    const value = { a: 1, b: ["x", null] };
    assert.deepEqual(await client.call("raw", value), value);
    assert.ok(got instanceof EncodedPayload);
    assert.deepEqual([...got.bytes], [...encode(value)]);
    assert.deepEqual(await client.call("plain", value), value, "other handlers still decode");
  } finally {
    await done();
  }
});
