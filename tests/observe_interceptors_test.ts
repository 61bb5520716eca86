/** Server and client interceptors, traceparent propagation, the logger and its rate limiter. */
import assert from "node:assert/strict";
import {
  type CallContext,
  type ClientInterceptor,
  clientTracing,
  createLogger,
  Director,
  formatJsonLine,
  LogRateLimiter,
  type LogRecord,
  parseTraceparent,
  RpcClient,
  RpcError,
  RpcServer,
  type ServerInterceptor,
  serverTracing,
  silentLogger,
} from "../mod.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";
import { waitFor } from "./_support/wait.ts";

Deno.test("server interceptors see method, metadata, deadline and outcome; may reject or decorate", async () => {
  const seen: string[] = [];
  const tenant: ServerInterceptor = (call, next) => {
    if (!call.ctx.meta.tenant) throw new RpcError("unauthenticated", "set meta.tenant");
    seen.push(`${call.method}:${call.ctx.meta.tenant}:${call.ctx.deadline !== undefined}`);
    return next(call);
  };
  const decorate: ServerInterceptor = async (call, next) => {
    call.request = (call.request as number) + 1; // seen by the handler
    try {
      return { wrapped: await next(call) };
    } catch (e) {
      seen.push(`error:${(e as RpcError).code}`);
      throw e;
    }
  };
  const server = new RpcServer({ port: 0, interceptors: [tenant], logger: silentLogger })
    .register("double", (n) => (n as number) * 2)
    .register("slow", async (n) => {
      await new Promise((r) => setTimeout(r, 5));
      return n;
    })
    .register("nope", () => {
      throw new RpcError("not_found", "no");
    });
  server.use(decorate);
  await server.start();
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    await assert.rejects(client.call("double", 1), (e) => RpcError.is(e, "unauthenticated"));
    const meta = { tenant: "t1" };
    assert.deepEqual(await client.call("double", 1, { meta, timeoutMs: 5000 }), { wrapped: 4 });
    assert.deepEqual(await client.call("slow", 1, { meta }), { wrapped: 2 });
    await assert.rejects(client.call("nope", 1, { meta }), (e) => RpcError.is(e, "not_found"));
    assert.deepEqual(seen, ["double:t1:true", "slow:t1:false", "nope:t1:false", "error:not_found"]);
    assert.throws(() => server.use(42 as never), (e) => RpcError.is(e, "invalid_argument"));
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("client interceptors wrap callWorker once per call (failover inside) and may reject or add metadata", async () => {
  const nodes = await startCluster([
    { id: "a", tags: {} },
    { id: "w", tags: { role: "worker" } },
  ], { logger: silentLogger });
  try {
    const [a, w] = nodes;
    w.register("meta", (_req, ctx: CallContext) => ctx.meta);
    const log: string[] = [];
    const addId: ClientInterceptor = async (call, next) => {
      if (call.method === "forbidden") throw new RpcError("unauthenticated", "not allowed");
      call.options = { ...call.options, meta: { ...call.options.meta, "x-id": "42" } };
      try {
        const v = await next(call);
        log.push(`ok:${call.method}`);
        return v;
      } catch (e) {
        log.push(`error:${call.method}:${(e as RpcError).code}`);
        throw e;
      }
    };
    a.client.use(addId);
    const opts = { filter: "role=worker", meta: { user: "u" } };
    assert.deepEqual(await a.client.callWorker("meta", 0, opts), { user: "u", "x-id": "42" });
    assert.deepEqual(opts.meta, { user: "u" }, "the caller's options are not changed");
    await assert.rejects(
      a.client.callWorker("forbidden", 0, opts),
      (e) => RpcError.is(e, "unauthenticated"),
    );
    await assert.rejects(
      a.client.callWorker("missing", 0, opts),
      (e) => RpcError.is(e, "not_found"),
    );
    assert.deepEqual(log, ["ok:meta", "error:missing:not_found"]);
    assert.equal(a.client.stats().perWorker.w.calls, 2, "the rejected call never left");
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("traceparent travels caller → Director → worker: same trace, a new span per hop", async () => {
  const nodes = await startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "w1", tags: { role: "worker" } },
  ], { logger: silentLogger });
  const [dn, w1] = nodes;
  w1.register("trace", (_req, ctx: CallContext) => ctx.meta.traceparent ?? null);
  w1.server.use(serverTracing());
  dn.client.use(clientTracing());
  const director = await Director.start({ client: dn.client, methods: ["trace"] });
  director.server.use(serverTracing());
  const caller = await RpcClient.connect({ hostname: "127.0.0.1", port: director.addr.port });
  try {
    const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const atWorker = parseTraceparent(
      await caller.call<string>("trace", 0, { meta: { traceparent: incoming } }),
    );
    assert.ok(atWorker, "the worker's handler sees a valid traceparent");
    assert.equal(atWorker.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.notEqual(atWorker.spanId, "00f067aa0ba902b7");
    assert.equal(atWorker.flags, 1);
    // Without one, the first hop starts a trace.
    const fresh = parseTraceparent(await caller.call<string>("trace", 0));
    assert.ok(fresh);
    assert.notEqual(fresh.traceId, atWorker.traceId);
    // Directly through the ClusterClient too.
    const direct = parseTraceparent(
      await dn.client.callWorker<string>("trace", 0, {
        filter: "role=worker",
        meta: { traceparent: incoming },
      }),
    );
    assert.equal(direct?.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
  } finally {
    await caller.close();
    await director.close();
    await stopAll(nodes);
  }
});

Deno.test("parseTraceparent follows the W3C rules for invalid values", () => {
  const ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  assert.deepEqual(parseTraceparent(ok), {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    flags: 1,
  });
  for (
    const bad of [
      undefined,
      "",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    ]
  ) assert.equal(parseTraceparent(bad), undefined, String(bad));
  // A later version may append fields.
  assert.ok(parseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"));
});

Deno.test("logger: levels, JSON lines, and a rate limiter that reports what it suppressed", () => {
  const records: LogRecord[] = [];
  const logger = createLogger((r) => records.push(r), "warn");
  logger.info("dropped");
  logger.warn("kept", { member: "b", n: 1 });
  assert.equal(records.length, 1);
  assert.equal(logger.enabled("debug"), false);
  const line = JSON.parse(formatJsonLine(records[0]));
  assert.equal(line.level, "warn");
  assert.equal(line.msg, "kept");
  assert.equal(line.member, "b");
  assert.match(line.time, /^\d{4}-\d\d-\d\dT/);
  let now = 0;
  const limiter = new LogRateLimiter(1000, 2, () => now);
  assert.deepEqual([0, 1, 2, 3].map(() => limiter.admit("k")), [0, 0, -1, -1]);
  assert.equal(limiter.admit("other"), 0);
  now = 1000;
  assert.equal(limiter.admit("k"), 2, "the first record of a new window counts the suppressed");
  // A sink that throws never breaks the caller.
  createLogger(() => {
    throw new Error("broken sink");
  }).error("x");
});

Deno.test("RpcServer logs authentication failures, rate-limited", async () => {
  const records: LogRecord[] = [];
  const server = new RpcServer({
    port: 0,
    secret: "s3cret",
    logger: createLogger((r) => records.push(r), "warn"),
  }).register("x", () => 1);
  await server.start();
  try {
    for (let i = 0; i < 8; i++) {
      const c = await RpcClient.connect({
        hostname: "127.0.0.1",
        port: server.addr.port,
        secret: "wrong",
        connectTimeoutMs: 3000,
      }).catch((e) => e);
      if (c instanceof RpcClient) await c.close();
    }
    await waitFor(() => server.stats().authFailures === 8, "8 auth failures");
    const auth = records.filter((r) => r.msg === "rpc authentication failed");
    assert.equal(auth.length, 5, "5 per 10 s window, the rest suppressed");
    assert.match(String(auth[0].fields.remote), /^127\.0\.0\.1:\d+$/);
  } finally {
    await server.close();
  }
});
