/**
 * Which lane an `RpcClient` puts each unary request on, seen from a QUIC server that speaks just
 * enough of the lane protocol to record it and answers only when told: small requests keep the
 * express lane, large ones take the bulk lanes (all opened with the first large request), one
 * large request per lane at a time, and those beyond the lanes wait for one instead of queueing
 * behind another on its stream.
 */
import assert from "node:assert/strict";
import { defaultDevCa, issueDevCertificate, RPC_ALPN, RpcClient, RpcError } from "../mod.ts";
import { frame } from "./_support/rpc_helpers.ts";
import { eventually, waitFor } from "./_support/wait.ts";

const T_REQUEST = 1, T_RESPONSE = 2, T_HELLO = 9;
const F_RAW = 1;
const KiB = 1024;

/** A request the fake server received. */
interface Seen {
  /** The lane it came on: 0 is the first stream the client opened (the express lane). */
  lane: number;
  id: number;
  /** Request body bytes (method and payload). */
  bytes: number;
  /** Answers it with one raw byte: the lane number. */
  respond(): void;
}

/** Reads frames from `stream`, calling `onFrame` for each. */
async function readFrames(
  stream: ReadableStream<Uint8Array>,
  onFrame: (type: number, id: number, body: Uint8Array) => void,
): Promise<void> {
  let buf = new Uint8Array(0);
  for await (const chunk of stream) {
    const next = new Uint8Array(buf.length + chunk.length);
    next.set(buf);
    next.set(chunk, buf.length);
    buf = next;
    for (;;) {
      if (buf.length < 10) break;
      const v = new DataView(buf.buffer, buf.byteOffset);
      const total = 4 + v.getUint32(0);
      if (buf.length < total) break;
      onFrame(buf[4], v.getUint32(6), buf.subarray(10, total));
      buf = buf.slice(total);
    }
  }
}

/**
 * A server for one connection: sends HELLO (no secret), numbers the client's streams in the
 * order they arrive, answers requests of at most `autoBytes` at once and holds the others.
 */
async function fakeServer(autoBytes = 16 * KiB) {
  const tls = await issueDevCertificate(await defaultDevCa());
  const endpoint = new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
  const listener = endpoint.listen({
    alpnProtocols: [RPC_ALPN],
    cert: tls.certPem,
    key: tls.keyPem,
  });
  const seen: Seen[] = [];
  const serving = (async () => {
    const conn = await listener.accept();
    const control = await conn.createBidirectionalStream();
    await control.writable.getWriter().write(frame(T_HELLO, 0, 0, new Uint8Array(33)));
    let lanes = 0;
    for await (const stream of conn.incomingBidirectionalStreams) {
      const lane = lanes++;
      const writer = stream.writable.getWriter();
      readFrames(stream.readable, (type, id, body) => {
        if (type !== T_REQUEST) return;
        const respond = () => {
          writer.write(frame(T_RESPONSE, F_RAW, id, new Uint8Array([lane]))).catch(() => {});
        };
        seen.push({ lane, id, bytes: body.length, respond });
        if (body.length <= autoBytes) respond();
      }).catch(() => {});
    }
  })().catch(() => {});
  return {
    port: endpoint.addr.port,
    seen,
    async close() {
      endpoint.close();
      await serving;
    },
  };
}

async function connect(port: number, lanes: number): Promise<RpcClient> {
  return await RpcClient.connect({ hostname: "127.0.0.1", port, lanes });
}

/** Calls still pending when a test fails reject at close: not an uncaught error then. */
function pending<T>(calls: Promise<T>[]): Promise<T>[] {
  for (const c of calls) c.catch(() => {});
  return calls;
}

/** The lane a call's answer names. */
async function laneOf(call: Promise<unknown>): Promise<number> {
  return ((await call) as Uint8Array)[0];
}

Deno.test("rpc bulk lanes: large requests take a lane each, wait for one beyond them, and leave the express lane to small calls", async () => {
  const server = await fakeServer();
  const client = await connect(server.port, 3); // the express lane and 2 bulk lanes
  try {
    const big = new Uint8Array(600 * KiB);
    const calls = pending([0, 1, 2].map(() => client.call("m", big)));
    await waitFor(() => server.seen.length === 2, "2 large requests at the server");
    assert.deepEqual(server.seen.map((s) => s.lane).sort(), [1, 2], "a bulk lane each");
    // The third waits in the client, not behind another request on a lane.
    assert.equal(
      await eventually(() => server.seen.length > 2, { timeoutMs: 300 }),
      false,
      "the third large request waits for a lane",
    );
    assert.equal(await laneOf(client.call("m", new Uint8Array(10))), 0, "small calls: express");
    const [first, second] = server.seen;
    first.respond();
    await waitFor(() => server.seen.length === 4, "the waiting request once a lane is free");
    const third = server.seen[3];
    assert.ok(third.bytes > 600 * KiB);
    assert.equal(third.lane, first.lane, "it takes the lane that became free");
    second.respond();
    third.respond();
    const lanes = (await Promise.all(calls.map(laneOf))).sort();
    assert.deepEqual(lanes, [first.lane, first.lane, second.lane].sort());
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("rpc bulk lanes: large requests share a lane while together they fit in 1 MiB", async () => {
  const server = await fakeServer();
  const client = await connect(server.port, 2); // one bulk lane
  try {
    const calls = pending([0, 1, 2].map(() => client.call("m", new Uint8Array(200 * KiB))));
    await waitFor(() => server.seen.length === 3, "3 requests of 200 KiB at once");
    assert.deepEqual(server.seen.map((s) => s.lane), [1, 1, 1]);
    const [big] = pending([client.call("m", new Uint8Array(600 * KiB))]);
    assert.equal(
      await eventually(() => server.seen.length > 3, { timeoutMs: 300 }),
      false,
      "600 KiB more does not fit",
    );
    for (const s of server.seen) s.respond();
    await waitFor(() => server.seen.length === 4, "the 600 KiB request once the lane is free");
    server.seen[3].respond();
    assert.deepEqual(await Promise.all([...calls, big].map(laneOf)), [1, 1, 1, 1]);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("rpc bulk lanes: a large request that times out waiting for a lane is never sent", async () => {
  const server = await fakeServer();
  const client = await connect(server.port, 2);
  try {
    const big = new Uint8Array(600 * KiB);
    const [first] = pending([client.call("m", big)]);
    await waitFor(() => server.seen.length === 1, "the first request");
    await assert.rejects(
      client.call("m", big, { timeoutMs: 100 }),
      (e) => RpcError.is(e, "deadline_exceeded"),
    );
    server.seen[0].respond();
    assert.equal(await laneOf(first), 1);
    const [next] = pending([client.call("m", big)]);
    await waitFor(() => server.seen.length === 2, "the next request");
    server.seen[1].respond();
    assert.equal(await laneOf(next), 1);
    assert.equal(
      await eventually(() => server.seen.length > 2, { timeoutMs: 300 }),
      false,
      "the timed-out request never went out",
    );
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("rpc bulk lanes: with a single lane, large requests share it without waiting", async () => {
  const server = await fakeServer();
  const client = await connect(server.port, 1);
  try {
    const calls = pending([0, 1].map(() => client.call("m", new Uint8Array(600 * KiB))));
    await waitFor(() => server.seen.length === 2, "both requests");
    assert.deepEqual(server.seen.map((s) => s.lane), [0, 0]);
    for (const s of server.seen) s.respond();
    assert.deepEqual(await Promise.all(calls.map(laneOf)), [0, 0]);
  } finally {
    await client.close();
    await server.close();
  }
});
