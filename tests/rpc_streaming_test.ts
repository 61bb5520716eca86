import assert from "node:assert/strict";
import { RpcClient, RpcError, RpcServer } from "../mod.ts";
import { waitFor } from "./_support/wait.ts";

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

async function* range(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) yield i;
}

Deno.test("rpc streaming: server-streaming yields every response in order, then ends", async () => {
  const server = new RpcServer().registerServerStream("count", async function* (req) {
    const { n } = req as { n: number };
    for (let i = 0; i < n; i++) yield { i, sq: i * i };
  });
  const { client, done } = await setup(server);
  try {
    const got: { i: number; sq: number }[] = [];
    for await (const m of client.serverStream<{ i: number; sq: number }>("count", { n: 500 })) {
      got.push(m);
    }
    assert.equal(got.length, 500);
    got.forEach((m, i) => assert.deepEqual(m, { i, sq: i * i }));
    await waitFor(() => server.stats().activeCalls === 0, "no active calls at the server");
  } finally {
    await done();
  }
});

Deno.test("rpc streaming: client-streaming sums the requests into one response", async () => {
  const server = new RpcServer().registerClientStream("sum", async (reqs) => {
    let s = 0;
    for await (const r of reqs) s += r as number;
    return s;
  });
  const { client, done } = await setup(server);
  try {
    assert.equal(await client.clientStream<number>("sum", range(1000)), 499_500);
    assert.equal(await client.clientStream<number>("sum", range(0)), 0);
  } finally {
    await done();
  }
});

Deno.test("rpc streaming: bidirectional echoes each request while requests are still being sent", async () => {
  const server = new RpcServer().registerBidiStream("upper", async function* (reqs) {
    for await (const r of reqs) yield (r as string).toUpperCase();
  });
  const { client, done } = await setup(server);
  try {
    // Ping-pong: the next request is produced only after the previous answer arrived, which
    // deadlocks unless responses flow while the request stream is open.
    let answered = 0;
    const reqs = async function* () {
      for (let i = 0; i < 50; i++) {
        while (answered < i) await new Promise((r) => setTimeout(r, 1));
        yield `msg${i}`;
      }
    };
    const out: string[] = [];
    for await (const s of client.bidiStream<string>("upper", reqs())) {
      out.push(s);
      answered++;
    }
    assert.deepEqual(out, Array.from({ length: 50 }, (_, i) => `MSG${i}`));
  } finally {
    await done();
  }
});

Deno.test("rpc streaming: breaking out of a server stream cancels the handler (client-side early cancel)", async () => {
  let abortReason: unknown;
  let produced = 0;
  const server = new RpcServer().registerServerStream("forever", async function* (_req, ctx) {
    ctx.signal.addEventListener("abort", () => abortReason = ctx.signal.reason);
    while (!ctx.signal.aborted) {
      yield produced++;
      await new Promise((r) => setTimeout(r, 1));
    }
  });
  const { client, done } = await setup(server);
  try {
    let seen = 0;
    for await (const _ of client.serverStream("forever", null)) {
      if (++seen === 3) break;
    }
    await waitFor(() => abortReason !== undefined, "the handler's abort");
    assert.ok(RpcError.is(abortReason, "cancelled"));
    await waitFor(() => server.stats().activeCalls === 0, "no active calls at the server");
    const after = produced;
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(produced <= after + 1, "the handler stopped producing");
  } finally {
    await done();
  }
});

Deno.test("rpc streaming: the server ending a client stream early stops the client's request pump", async () => {
  let pulled = 0;
  let requestIteratorClosed = false;
  async function* endless() {
    try {
      for (;;) {
        pulled++;
        yield pulled;
        await new Promise((r) => setTimeout(r, 1));
      }
    } finally {
      requestIteratorClosed = true;
    }
  }
  const server = new RpcServer().registerClientStream("firstTwo", async (reqs) => {
    const got: unknown[] = [];
    for await (const r of reqs) {
      got.push(r);
      if (got.length === 2) break; // server-side early cancel of the request stream
    }
    return got;
  });
  const { client, done } = await setup(server);
  try {
    assert.deepEqual(await client.clientStream("firstTwo", endless()), [1, 2]);
    await waitFor(() => requestIteratorClosed, "the request iterator closed");
    const after = pulled;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(pulled, after, "no more requests are pulled after the call ended");
  } finally {
    await done();
  }
});

Deno.test("rpc streaming: a server-side error mid-stream reaches the client with its code", async () => {
  const server = new RpcServer()
    .registerServerStream("twoThenFail", async function* () {
      yield 1;
      yield 2;
      throw new RpcError("cancelled", "server gave up");
    })
    .registerBidiStream("failOnThird", async function* (reqs) {
      let n = 0;
      for await (const r of reqs) {
        if (++n === 3) throw new Error("third request rejected");
        yield r;
      }
    });
  const { client, done } = await setup(server);
  try {
    const got: unknown[] = [];
    await assert.rejects(
      (async () => {
        for await (const m of client.serverStream("twoThenFail", null)) got.push(m);
      })(),
      (e) => RpcError.is(e, "cancelled") && e.message === "server gave up",
    );
    assert.deepEqual(got, [1, 2]);
    const echoed: unknown[] = [];
    await assert.rejects(
      (async () => {
        for await (const m of client.bidiStream("failOnThird", range(10))) echoed.push(m);
      })(),
      (e) => RpcError.is(e, "internal") && /third request/.test(e.message),
    );
    assert.deepEqual(echoed, [0, 1]);
  } finally {
    await done();
  }
});

Deno.test("rpc streaming: cancelling a bidi stream by signal aborts both sides", async () => {
  let serverReason: unknown;
  const server = new RpcServer().registerBidiStream("hang", async function* (reqs, ctx) {
    ctx.signal.addEventListener("abort", () => serverReason = ctx.signal.reason);
    for await (const r of reqs) yield r;
  });
  const { client, done } = await setup(server);
  try {
    const ac = new AbortController();
    const never = (async function* () {
      yield "first";
      await new Promise(() => {}); // an idle request stream
    })();
    const got: unknown[] = [];
    await assert.rejects(
      (async () => {
        for await (const m of client.bidiStream("hang", never, { signal: ac.signal })) {
          got.push(m);
          ac.abort();
        }
      })(),
      (e) => RpcError.is(e, "cancelled"),
    );
    assert.deepEqual(got, ["first"]);
    await waitFor(() => serverReason !== undefined, "the handler's abort");
    assert.ok(RpcError.is(serverReason, "cancelled"));
  } finally {
    await done();
  }
});

Deno.test("rpc streaming: a stream deadline gives deadline_exceeded on the client and aborts the handler", async () => {
  let serverReason: unknown;
  const server = new RpcServer().registerServerStream("slow", async function* (_r, ctx) {
    ctx.signal.addEventListener("abort", () => serverReason = ctx.signal.reason);
    yield "one";
    await new Promise((r) => ctx.signal.addEventListener("abort", r));
  });
  const { client, done } = await setup(server);
  try {
    const got: unknown[] = [];
    await assert.rejects(
      (async () => {
        for await (const m of client.serverStream("slow", null, { timeoutMs: 200 })) got.push(m);
      })(),
      (e) => RpcError.is(e, "deadline_exceeded"),
    );
    assert.deepEqual(got, ["one"]);
    await waitFor(() => serverReason !== undefined, "the handler's abort");
    assert.ok(
      RpcError.is(serverReason, "deadline_exceeded") || RpcError.is(serverReason, "cancelled"),
    );
  } finally {
    await done();
  }
});

Deno.test("rpc streaming: a slow consumer pushes back on a fast producer (backpressure)", async () => {
  let produced = 0;
  const chunk = new Uint8Array(64 * 1024);
  const total = 2000; // 125 MiB if nothing pushed back
  const server = new RpcServer().registerServerStream("flood", async function* () {
    for (let i = 0; i < total; i++) {
      produced++;
      yield chunk;
    }
  });
  const { client, done } = await setup(server);
  try {
    const it = client.serverStream<Uint8Array>("flood", null)[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.value?.length, 64 * 1024);
    // Give the producer ample time to run ahead; flow control must stop it well short of the end.
    let last = -1;
    for (let i = 0; i < 20 && produced !== last; i++) {
      last = produced;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(produced < total / 2, `producer ran ahead to ${produced} of ${total}`);
    let n = 1;
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      n++;
    }
    assert.equal(n, total);
  } finally {
    await done();
  }
});

Deno.test("rpc streaming: wrong kind or unknown streaming method gives not_found", async () => {
  const server = new RpcServer().register("unary", () => 1);
  const { client, done } = await setup(server);
  try {
    await assert.rejects(
      (async () => {
        for await (const _ of client.serverStream("unary", null)) { /* none */ }
      })(),
      (e) => RpcError.is(e, "not_found"),
    );
    await assert.rejects(
      client.clientStream("missing", range(3)),
      (e) => RpcError.is(e, "not_found"),
    );
    assert.equal(await client.call("unary", null), 1);
  } finally {
    await done();
  }
});
