/**
 * TCP lanes (`tcpLanes`, issue 14): small unary calls over TLS on TCP, bound to the
 * authenticated QUIC connection by the token in `HELLO`. Real sockets throughout: the client's
 * TLS connections are watched through `Deno.startTls` (bytes written, and a handle to break
 * them), and the hostile side speaks the frame layout over raw QUIC and TLS.
 */
import assert from "node:assert/strict";
import {
  defaultDevCa,
  Node,
  RPC_ALPN,
  RpcClient,
  type RpcClientOptions,
  RpcError,
  RpcServer,
  type RpcServerOptions,
} from "../mod.ts";
import { frame, rawConnect } from "./_support/rpc_helpers.ts";
import { sleep, waitFor } from "./_support/wait.ts";

const T_REQUEST = 1, T_RESPONSE = 2, T_LANE_OPEN = 5, T_HELLO = 9, T_READY = 11;

/** A TLS connection the client opened, and the bytes it wrote on it so far. */
interface WatchedTls {
  conn: Deno.TlsConn;
  written: number;
}

/**
 * Replaces `Deno.startTls` (which the client's TCP lane uses) for the duration of `fn`, to see
 * every TLS connection the client opens and count what it writes; `fail` makes it throw, as a
 * failed handshake would.
 */
async function watchingTls<T>(
  fn: (watched: WatchedTls[]) => Promise<T>,
  fail = false,
): Promise<T> {
  const deno = Deno as unknown as { startTls: typeof Deno.startTls };
  const original = deno.startTls;
  const watched: WatchedTls[] = [];
  deno.startTls = async (tcp, options) => {
    if (fail) {
      tcp.close();
      throw new Error("injected TLS failure");
    }
    const conn = await original(tcp, options);
    const w: WatchedTls = { conn, written: 0 };
    watched.push(w);
    const writer = conn.writable.getWriter();
    const writable = new WritableStream<Uint8Array>({
      write(chunk) {
        w.written += chunk.byteLength;
        return writer.write(chunk);
      },
      close: () => writer.close(),
      abort: (reason) => writer.abort(reason),
    });
    return new Proxy(conn, {
      get(target, p) {
        if (p === "writable") return writable;
        if (p === "write") {
          // The lane writes the connection directly (not through its writable).
          return async (chunk: Uint8Array) => {
            const n = await target.write(chunk);
            w.written += n;
            return n;
          };
        }
        const v = Reflect.get(target, p, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  };
  try {
    return await fn(watched);
  } finally {
    deno.startTls = original;
  }
}

async function serve(
  options: RpcServerOptions = {},
  clientOptions: Partial<RpcClientOptions> = {},
): Promise<{ server: RpcServer; client: RpcClient; done: () => Promise<void> }> {
  const server = new RpcServer({ tcpLanes: true, ...options })
    .register("echo", (req) => req)
    .register("wait", (ms, ctx) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => resolve("waited"), ms as number);
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(t);
          reject(ctx.signal.reason);
        });
      }))
    .registerServerStream("count", async function* (n) {
      for (let i = 0; i < (n as number); i++) yield i;
    });
  await server.start();
  let client: RpcClient;
  try {
    client = await RpcClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      tcpLanes: true,
      ...clientOptions,
    });
  } catch (e) {
    await server.close();
    throw e;
  }
  return {
    server,
    client,
    done: async () => {
      await client.close();
      await server.close();
    },
  };
}

function onTcp(client: RpcClient): Promise<void> {
  return waitFor(() => client.laneTransport === "tcp", "the TCP lane to be attached");
}

/** Reads one frame from a raw byte stream reader: `{type, body}`, or null at its end. */
async function readFrame(
  r: ReadableStreamDefaultReader<Uint8Array>,
  pending: { buf: Uint8Array },
): Promise<{ type: number; id: number; body: Uint8Array } | null> {
  for (;;) {
    const b = pending.buf;
    if (b.length >= 10) {
      const len = new DataView(b.buffer, b.byteOffset).getUint32(0);
      if (b.length >= 4 + len) {
        pending.buf = b.slice(4 + len);
        return {
          type: b[4],
          id: new DataView(b.buffer, b.byteOffset).getUint32(6),
          body: b.slice(10, 4 + len),
        };
      }
    }
    const { value, done } = await r.read();
    if (done) return null;
    const next = new Uint8Array(b.length + value.length);
    next.set(b);
    next.set(value, b.length);
    pending.buf = next;
  }
}

/** A raw QUIC connection and the `HELLO` its server sent (auth flag, nonce, token if any). */
async function rawHello(port: number): Promise<{ quic: Deno.QuicConn; hello: Uint8Array }> {
  const quic = await rawConnect(port);
  const incoming = quic.incomingBidirectionalStreams.getReader();
  const { value: control } = await incoming.read();
  incoming.releaseLock();
  const f = await readFrame(control!.readable.getReader(), { buf: new Uint8Array() });
  assert.equal(f?.type, T_HELLO);
  return { quic, hello: f!.body };
}

/** A raw TLS connection to the server's TCP port, verified like the client's TCP lane. */
async function rawTls(port: number): Promise<Deno.TlsConn> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  return await Deno.startTls(tcp, {
    hostname: "localhost",
    caCerts: [(await defaultDevCa()).certPem],
    alpnProtocols: [RPC_ALPN],
  });
}

/** Whether the server closes `conn` within `ms` (its end of stream, or a reset, is read). */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const r = conn.readable.getReader();
  const ended = (async () => {
    try {
      for (;;) if ((await r.read()).done) return true;
    } catch {
      return true;
    }
  })();
  const result = await Promise.race([ended, sleep(ms).then(() => false)]);
  try {
    conn.close();
  } catch { /* closed by a failed read */ }
  await ended;
  return result;
}

Deno.test("rpc tcp lanes: small unary calls ride the TCP lane, 1 MiB calls the QUIC lanes", async () => {
  await watchingTls(async (watched) => {
    const { server, client, done } = await serve();
    try {
      await onTcp(client);
      assert.equal(watched.length, 1, "one TLS connection for the lane");
      const before = watched[0].written;
      const payload = "x".repeat(64);
      const results = await Promise.all(
        Array.from({ length: 200 }, () => client.call("echo", payload, { timeoutMs: 10_000 })),
      );
      assert.ok(results.every((r) => r === payload));
      const small = watched[0].written - before;
      assert.ok(small >= 200 * 64, `200 calls of 64 B wrote ${small} B on TCP`);
      const big = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff);
      assert.deepEqual(await client.call("echo", big, { timeoutMs: 30_000 }), big);
      const bulk = watched[0].written - before - small;
      assert.ok(bulk < 64 * 1024, `a 1 MiB request wrote ${bulk} B on TCP (it takes QUIC)`);
      assert.equal(client.laneTransport, "tcp");
      const cs = client.stats();
      assert.equal(cs.tcpLanes, 1);
      assert.equal(cs.tcpLaneFallbacks, 0);
      const ss = server.stats();
      assert.equal(ss.tcpLanesOpened, 1);
      assert.equal(ss.rejectedTcpLanes, 0);
    } finally {
      await done();
    }
  });
});

Deno.test("rpc tcp lanes: MessagePack calls of every size in one burst arrive whole; large ones take QUIC", async () => {
  await watchingTls(async (watched) => {
    const { client, done } = await serve();
    try {
      await onTcp(client);
      const before = watched[0].written;
      // Sizes around the batch's and the small frame's (16 KiB) limits, requests and responses
      // encoded in place or spilled, interleaved in one turn.
      let seed = 7;
      const rand = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
      const sizes = [
        ...Array.from({ length: 300 }, () => rand(3000)),
        ...Array.from({ length: 40 }, (_, i) => 16 * 1024 - 40 + i * 2),
      ];
      const values = sizes.map((n, i) =>
        i % 3 === 0 ? "s".repeat(n) : { i, text: "é".repeat(n >> 1), list: [i, n, 1.5] }
      );
      const results = await Promise.all(
        values.map((v) => client.call("echo", v, { timeoutMs: 20_000 })),
      );
      assert.deepEqual(results, values);
      const onTcpBytes = watched[0].written - before;
      // 40 KiB of MessagePack after a burst (the batch then has room for it): over the small
      // frame limit all the same, so it goes out on QUIC.
      const big = "b".repeat(40 * 1024);
      const small = Array.from({ length: 100 }, (_, i) => `small ${i}`);
      const burst = await Promise.all(
        [...small, big].map((v) => client.call("echo", v, { timeoutMs: 20_000 })),
      );
      assert.deepEqual(burst, [...small, big]);
      const burstOnTcp = watched[0].written - before - onTcpBytes;
      assert.ok(burstOnTcp < 20 * 1024, `the burst with 40 KiB wrote ${burstOnTcp} B on TCP`);
    } finally {
      await done();
    }
  });
});

Deno.test("rpc tcp lanes: either side without them keeps every call on QUIC", async () => {
  await watchingTls(async (watched) => {
    // A client with tcpLanes against a server without: no token, so no TCP attempt.
    const plainServer = await serve({ tcpLanes: false });
    try {
      for (let i = 0; i < 20; i++) assert.equal(await plainServer.client.call("echo", i), i);
      assert.equal(plainServer.client.laneTransport, "quic");
      assert.deepEqual(
        [plainServer.client.stats().tcpLanes, plainServer.client.stats().tcpLaneFallbacks],
        [0, 0],
      );
    } finally {
      await plainServer.done();
    }
    // A server with tcpLanes and a client without: its longer HELLO is accepted, no TCP lane.
    const plainClient = await serve({}, { tcpLanes: false });
    try {
      for (let i = 0; i < 20; i++) assert.equal(await plainClient.client.call("echo", i), i);
      assert.equal(plainClient.client.laneTransport, "quic");
      assert.equal(plainClient.server.stats().tcpLanesOpened, 0);
    } finally {
      await plainClient.done();
    }
    assert.equal(watched.length, 0, "no TLS connection was opened");
  });
});

Deno.test("rpc tcp lanes: a failed TLS connect leaves the calls on QUIC, counted", async () => {
  await watchingTls(async () => {
    const { server, client, done } = await serve();
    try {
      await waitFor(() => client.stats().tcpLaneFallbacks === 1, "the fallback to be counted");
      for (let i = 0; i < 20; i++) assert.equal(await client.call("echo", i), i);
      assert.equal(client.laneTransport, "quic");
      assert.equal(server.stats().tcpLanesOpened, 0);
    } finally {
      await done();
    }
  }, true);
});

Deno.test("rpc tcp lanes: forged, reused and unauthenticated tokens, garbage and silence are refused", async () => {
  const { server, client, done } = await serve({ secret: "tcp lane secret" }, {
    secret: "tcp lane secret",
  });
  try {
    await onTcp(client);
    const port = server.addr.port;
    let rejected = 0;
    const refused = async (what: string, conn: Deno.Conn, ms = 1500) => {
      assert.ok(await closedWithin(conn, ms), `${what}: the server closes the TCP connection`);
      rejected++;
      await waitFor(() => server.stats().rejectedTcpLanes === rejected, `${what} counted`);
    };

    // A random token.
    let tls = await rawTls(port);
    await tls.write(frame(T_LANE_OPEN, 0, 0, crypto.getRandomValues(new Uint8Array(32))));
    await refused("a forged token", tls);

    // A real token whose QUIC connection has not proven the secret: refused, and used up.
    const { quic, hello } = await rawHello(port);
    assert.equal(hello.length, 65, "HELLO carries a token");
    assert.equal(hello[0], 1, "the server requires the secret");
    const token = hello.slice(33);
    tls = await rawTls(port);
    await tls.write(frame(T_LANE_OPEN, 0, 0, token));
    await refused("a token before the secret is proven", tls);
    tls = await rawTls(port);
    await tls.write(frame(T_LANE_OPEN, 0, 0, token));
    await refused("a token tried twice", tls);
    quic.close();

    // A LANE_OPEN larger than a token, and another frame type first.
    tls = await rawTls(port);
    await tls.write(frame(T_LANE_OPEN, 0, 0, new Uint8Array(4096)));
    await refused("an oversized LANE_OPEN", tls);
    tls = await rawTls(port);
    await tls.write(frame(T_REQUEST, 0, 1, new Uint8Array(32)));
    await refused("a REQUEST before LANE_OPEN", tls);

    // Not TLS at all.
    const raw = await Deno.connect({ hostname: "127.0.0.1", port });
    await raw.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await refused("garbage bytes", raw);

    // TLS, then silence: closed by the 2 s deadline.
    tls = await rawTls(port);
    await tls.handshake();
    const t0 = Date.now();
    await refused("no LANE_OPEN", tls, 6000);
    assert.ok(Date.now() - t0 >= 1500, `closed after ${Date.now() - t0} ms, at the deadline`);

    // The server went on serving, over the good client's TCP lane.
    assert.equal(client.laneTransport, "tcp");
    for (let i = 0; i < 20; i++) assert.equal(await client.call("echo", i), i);
    assert.equal(server.stats().tcpLanesOpened, 1);
  } finally {
    await done();
  }
});

Deno.test("rpc tcp lanes: a token is good once, and a connection gets one TCP lane", async () => {
  const server = new RpcServer({ tcpLanes: true }).register("echo", (r) => r);
  await server.start();
  const port = server.addr.port;
  const { quic, hello } = await rawHello(port);
  try {
    assert.equal(hello[0], 0, "no secret");
    const token = hello.slice(33);
    const lane = await rawTls(port);
    await lane.write(frame(T_LANE_OPEN, 0, 0, token));
    const reader = lane.readable.getReader();
    const pending = { buf: new Uint8Array() };
    assert.equal((await readFrame(reader, pending))?.type, T_READY, "the lane is accepted");
    // A call on the attached lane (the raw frame layout: method "echo", msgpack "hi").
    const body = new Uint8Array([4, ...new TextEncoder().encode("echo"), 0xa2, 0x68, 0x69]);
    await lane.write(frame(T_REQUEST, 0, 7, body));
    const answer = await readFrame(reader, pending);
    assert.deepEqual([answer?.type, answer?.id, [...answer!.body]], [T_RESPONSE, 7, [
      0xa2,
      0x68,
      0x69,
    ]]);
    const again = await rawTls(port);
    await again.write(frame(T_LANE_OPEN, 0, 0, token));
    assert.ok(await closedWithin(again, 1500), "the token cannot be used twice");
    assert.equal(server.stats().rejectedTcpLanes, 1);
    assert.equal(server.stats().tcpLanesOpened, 1);
    // Closing the QUIC connection closes its TCP lane.
    quic.close();
    reader.releaseLock();
    assert.ok(await closedWithin(lane, 5000), "the TCP lane dies with its QUIC connection");
  } finally {
    await server.close();
  }
});

Deno.test("rpc tcp lanes: closing the TCP lane closes the QUIC connection; closing the server closes the lane", async () => {
  // A raw client does not answer GOAWAY: the server closes it after the drain timeout.
  const server = new RpcServer({ tcpLanes: true, drainTimeoutMs: 300 })
    .register("echo", (r) => r);
  await server.start();
  const port = server.addr.port;
  try {
    // The lane goes first: the server closes the QUIC connection.
    const first = await rawHello(port);
    const lane = await rawTls(port);
    await lane.write(frame(T_LANE_OPEN, 0, 0, first.hello.slice(33)));
    const reader = lane.readable.getReader();
    assert.equal((await readFrame(reader, { buf: new Uint8Array() }))?.type, T_READY);
    reader.releaseLock();
    lane.close();
    const info = await Promise.race([first.quic.closed, sleep(5000).then(() => "still open")]);
    assert.notEqual(info, "still open", "the QUIC connection closes with its TCP lane");
    // The server closing closes an attached lane.
    const second = await rawHello(port);
    const lane2 = await rawTls(port);
    await lane2.write(frame(T_LANE_OPEN, 0, 0, second.hello.slice(33)));
    const reader2 = lane2.readable.getReader();
    assert.equal((await readFrame(reader2, { buf: new Uint8Array() }))?.type, T_READY);
    reader2.releaseLock();
    const closing = server.close();
    assert.ok(await closedWithin(lane2, 8000), "the server's close closes the TCP lane");
    second.quic.close();
    await closing;
  } finally {
    await server.close();
  }
});

Deno.test("rpc tcp lanes: a broken TCP lane fails pending calls with unavailable; the next call reconnects", async () => {
  await watchingTls(async (watched) => {
    const { server, client, done } = await serve();
    try {
      await onTcp(client);
      const pending = client.call("wait", 30_000, { timeoutMs: 60_000 });
      await waitFor(() => server.stats().activeCalls === 1, "the call to run");
      watched[0].conn.close();
      await assert.rejects(pending, (e) => RpcError.is(e, "unavailable"));
      await waitFor(() => server.stats().connections === 0, "the server to drop the connection");
      assert.equal(await client.call("echo", "again", { timeoutMs: 10_000 }), "again");
      await onTcp(client);
      assert.equal(watched.length, 2);
      assert.equal(client.stats().connects, 2);
      assert.equal(server.stats().tcpLanesOpened, 2);
    } finally {
      await done();
    }
  });
});

Deno.test("rpc tcp lanes: deadlines and cancellation reach the handler; streaming calls still work", async () => {
  const aborted: string[] = [];
  const server = new RpcServer({ tcpLanes: true })
    .register("hold", (_req, ctx) =>
      new Promise((_, reject) => {
        ctx.signal.addEventListener("abort", () => {
          aborted.push((ctx.signal.reason as RpcError).code);
          reject(ctx.signal.reason);
        });
      }))
    .registerServerStream("count", async function* (n) {
      for (let i = 0; i < (n as number); i++) yield i;
    });
  await server.start();
  const client = await RpcClient.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
    tcpLanes: true,
  });
  try {
    await onTcp(client);
    await assert.rejects(
      client.call("hold", null, { timeoutMs: 200 }),
      (e) => RpcError.is(e, "deadline_exceeded"),
    );
    const ac = new AbortController();
    const cancelled = client.call("hold", null, { signal: ac.signal });
    await waitFor(() => server.stats().activeCalls === 1, "the call to run");
    ac.abort();
    await assert.rejects(cancelled, (e) => RpcError.is(e, "cancelled"));
    await waitFor(() => aborted.length === 2, "both handlers to see their abort");
    assert.deepEqual(aborted, ["deadline_exceeded", "cancelled"]);
    const got: number[] = [];
    for await (const n of client.serverStream<number>("count", 50)) got.push(n);
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
    assert.equal(client.laneTransport, "tcp");
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("rpc tcp lanes: the lane obeys the connection's call limit, and a drain finishes its calls", async () => {
  const { server, client, done } = await serve({ maxConcurrentCallsPerConnection: 2 });
  try {
    await onTcp(client);
    const running = [client.call("wait", 300), client.call("wait", 300)];
    await waitFor(() => server.stats().activeCalls === 2, "two calls to run");
    await assert.rejects(
      client.call("echo", 1),
      (e) => RpcError.is(e, "resource_exhausted") && /concurrent calls/.test(e.message),
    );
    // GOAWAY: the calls on the TCP lane finish, then the client closes the idle connection.
    const t0 = Date.now();
    await server.close();
    assert.ok(Date.now() - t0 < 4000, `drained in ${Date.now() - t0} ms, before the timeout`);
    assert.deepEqual(await Promise.all(running), ["waited", "waited"]);
  } finally {
    await done();
  }
});

Deno.test("rpc tcp lanes: 64 connections may wait for LANE_OPEN; clients then stay on QUIC until one leaves", async () => {
  const server = new RpcServer({ tcpLanes: true }).register("echo", (r) => r);
  await server.start();
  const port = server.addr.port;
  const silent: Deno.TcpConn[] = [];
  const clients: RpcClient[] = [];
  try {
    // Silent before their TLS handshake: each holds a place, past the 2 s deadline too.
    for (let i = 0; i < 64; i++) silent.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    const late = await RpcClient.connect({
      hostname: "127.0.0.1",
      port,
      tcpLanes: true,
      connectTimeoutMs: 1000,
    });
    clients.push(late);
    await waitFor(() => late.stats().tcpLaneFallbacks === 1, "the late client's lane to give up");
    assert.equal(await late.call("echo", "on quic"), "on quic");
    assert.equal(late.laneTransport, "quic");
    await waitFor(() => server.stats().rejectedTcpLanes >= 64, "the deadline to count the 64");
    assert.equal(server.stats().tcpLanesOpened, 0);
    // They leave: their places free, and the next client's lane opens.
    for (const c of silent.splice(0)) c.close();
    const next = await RpcClient.connect({ hostname: "127.0.0.1", port, tcpLanes: true });
    clients.push(next);
    await onTcp(next);
    assert.equal(await next.call("echo", "on tcp"), "on tcp");
  } finally {
    for (const c of clients) await c.close();
    for (const c of silent) c.close();
    await server.close();
  }
});

Deno.test("rpc tcp lanes: the TCP port has the QUIC port's number; a taken one fails naming tcpLanes", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const server = new RpcServer({ tcpLanes: true, port });
    await assert.rejects(
      server.start(),
      (e) => RpcError.is(e, "unavailable") && /tcpLanes/.test(e.message),
    );
  } finally {
    taken.close();
  }
  assert.throws(
    () => new RpcServer({ tcpLanes: "yes" as unknown as boolean }),
    (e) => RpcError.is(e, "invalid_argument") && /tcpLanes/.test(e.message),
  );
  await assert.rejects(
    RpcClient.connect({ hostname: "127.0.0.1", port: 1, tcpLanes: 1 as unknown as boolean }),
    (e) => RpcError.is(e, "invalid_argument") && /tcpLanes/.test(e.message),
  );
});

Deno.test("rpc tcp lanes: a wrong secret is still rejected, with no TCP lane", async () => {
  await watchingTls(async (watched) => {
    const server = new RpcServer({ tcpLanes: true, secret: "right secret" })
      .register("echo", (r) => r);
    await server.start();
    try {
      await assert.rejects(
        RpcClient.connect({
          hostname: "127.0.0.1",
          port: server.addr.port,
          secret: "wrong secret",
          tcpLanes: true,
        }),
        (e) => RpcError.is(e, "unauthenticated"),
      );
      assert.equal(watched.length, 0);
      assert.equal(server.stats().tcpLanesOpened, 0);
    } finally {
      await server.close();
    }
  });
});

Deno.test("Node: tcpLanes on caller and worker carries callWorker over TCP; a bad value names the option", async () => {
  const worker = await Node.start({
    id: "tcp-worker",
    profile: "LOCAL",
    tags: { role: "worker" },
    tcpLanes: true,
    handlers: { echo: (req) => ({ echo: req }) },
  });
  let caller: Node | undefined;
  try {
    caller = await Node.start({
      id: "tcp-caller",
      profile: "LOCAL",
      seeds: [worker.gossipAddr],
      tcpLanes: true,
    });
    await waitFor(() => caller!.nodes.alive().length === 2, "the caller to see the worker");
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(
        await caller.client.callWorker("echo", i, { filter: "role=worker", timeoutMs: 5000 }),
        { echo: i },
      );
    }
    // The lane opens in the background: calls ride QUIC until it is attached.
    await waitFor(() => worker.server.stats().tcpLanesOpened === 1, "the caller's TCP lane");
    const before = worker.server.stats().callsTotal;
    assert.deepEqual(
      await caller.client.callWorker("echo", "tcp", { filter: "role=worker", timeoutMs: 5000 }),
      { echo: "tcp" },
    );
    assert.equal(worker.server.stats().callsTotal, before + 1);
  } finally {
    await caller?.stop();
    await worker.stop();
  }
  await assert.rejects(
    Node.start({ profile: "LOCAL", tcpLanes: "on" as unknown as boolean }),
    (e) => RpcError.is(e, "invalid_argument") && /tcpLanes/.test(e.message),
  );
});
