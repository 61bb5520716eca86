import assert from "node:assert/strict";
import { RpcError, UdpTransport } from "../mod.ts";
import { waitFor } from "./_support/wait.ts";

Deno.test("udp transport: datagrams are delivered with the sender's address", async () => {
  const a = await UdpTransport.bind({ hostname: "127.0.0.1", port: 0 });
  const b = await UdpTransport.bind({ hostname: "127.0.0.1", port: 0 });
  try {
    assert.match(a.localAddr, /^127\.0\.0\.1:\d+$/);
    assert.equal(a.maxPacketSize, 1400);
    const got: [number[], string][] = [];
    b.onPacket((data, from) => got.push([[...data], from]));
    // UDP may drop even on loopback under load: resend until one arrives.
    await waitFor(() => {
      if (got.length === 0) a.sendPacket(b.localAddr, new Uint8Array([1, 2, 3]));
      return got.length > 0;
    }, "datagram");
    assert.deepEqual(got[0], [[1, 2, 3], a.localAddr]);
    const full = new Uint8Array(1400).fill(9);
    const before = got.length;
    await waitFor(() => {
      if (got.length === before) a.sendPacket(b.localAddr, full);
      return got.length > before;
    }, "1400-byte datagram");
    assert.equal(got[before][0].length, 1400);
    assert.ok(b.stats().packetsIn >= 2);
    assert.ok(a.stats().bytesOut >= 1403);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("udp transport: oversize datagrams are refused on send and dropped on receive", async () => {
  const a = await UdpTransport.bind();
  const raw = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    assert.throws(
      () => a.sendPacket("127.0.0.1:9", new Uint8Array(1401)),
      (e) => RpcError.is(e, "invalid_argument"),
    );
    let received = 0;
    a.onPacket(() => received++);
    const [host, port] = [a.localAddr.split(":")[0], Number(a.localAddr.split(":")[1])];
    await waitFor(() => {
      raw.send(new Uint8Array(3000), { transport: "udp", hostname: host, port }).catch(() => {});
      return a.stats().packetsDropped > 0;
    }, "oversize drop");
    assert.equal(received, 0);
  } finally {
    raw.close();
    await a.close();
  }
});

Deno.test("udp transport: garbage, handler exceptions and bad addresses never stop the loop", async () => {
  const a = await UdpTransport.bind();
  const raw = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    let calls = 0;
    let good = 0;
    a.onPacket((data) => {
      calls++;
      if (data[0] !== 42) throw new Error("handler chokes on garbage");
      good++;
    });
    const port = Number(a.localAddr.split(":")[1]);
    for (let i = 0; i < 50; i++) {
      const junk = crypto.getRandomValues(new Uint8Array(1 + (i * 37) % 1400));
      if (junk[0] === 42) junk[0] = 0;
      await raw.send(junk, { transport: "udp", hostname: "127.0.0.1", port });
    }
    await raw.send(new Uint8Array(0), { transport: "udp", hostname: "127.0.0.1", port });
    await waitFor(() => {
      raw.send(new Uint8Array([42]), { transport: "udp", hostname: "127.0.0.1", port }).catch(
        () => {},
      );
      return good > 0;
    }, "a good datagram after garbage");
    assert.ok(calls > good);
    assert.ok(a.stats().packetsDropped > 0, "handler errors are counted");
    // Unparsable or unroutable addresses are counted, not thrown.
    a.sendPacket("no-port", new Uint8Array([1]));
    a.sendPacket("[::1", new Uint8Array([1]));
    a.sendPacket("127.0.0.1:99999", new Uint8Array([1]));
    assert.equal(a.stats().sendErrors, 3);
  } finally {
    raw.close();
    await a.close();
  }
});

Deno.test("udp transport: request/reply over the reliable channel, large payloads included", async () => {
  const a = await UdpTransport.bind();
  const b = await UdpTransport.bind();
  try {
    const seen: string[] = [];
    b.onRequest((req, from) => {
      seen.push(from);
      const out = new Uint8Array(req.length + 1);
      out.set(req);
      out[req.length] = 0xee;
      return Promise.resolve(out);
    });
    const reply = await a.request(b.localAddr, new Uint8Array([1, 2]), 5000);
    assert.deepEqual([...reply], [1, 2, 0xee]);
    const big = new Uint8Array(1_000_000).map((_, i) => i & 0xff);
    const bigReply = await a.request(b.localAddr, big, 10_000);
    assert.equal(bigReply.length, 1_000_001);
    assert.equal(bigReply[999_999], 999_999 & 0xff);
    assert.match(seen[0], /^127\.0\.0\.1:\d+$/);
    // A handler's RpcError keeps its code across the wire.
    b.onRequest(() => Promise.reject(new RpcError("invalid_argument", "wrong cluster label")));
    await assert.rejects(
      a.request(b.localAddr, new Uint8Array([1]), 5000),
      (e) => RpcError.is(e, "invalid_argument") && /wrong cluster label/.test(e.message),
    );
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("udp transport: oversize stream payloads are refused in both directions", async () => {
  const a = await UdpTransport.bind({ maxStreamBytes: 1000 });
  const b = await UdpTransport.bind({ maxStreamBytes: 1000 });
  try {
    b.onRequest(() => Promise.resolve(new Uint8Array(10)));
    await assert.rejects(
      a.request(b.localAddr, new Uint8Array(1001), 5000),
      (e) => RpcError.is(e, "invalid_argument"),
    );
    const c = await UdpTransport.bind({ maxStreamBytes: 5000 });
    try {
      await assert.rejects(
        c.request(b.localAddr, new Uint8Array(2000), 5000),
        (e) => RpcError.is(e, "resource_exhausted"),
      );
      c.onRequest(() => Promise.resolve(new Uint8Array(3000)));
      await assert.rejects(
        a.request(c.localAddr, new Uint8Array(1), 5000),
        (e) => RpcError.is(e, "resource_exhausted"),
      );
    } finally {
      await c.close();
    }
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("udp transport: a slow peer gives deadline_exceeded", async () => {
  const a = await UdpTransport.bind();
  const b = await UdpTransport.bind();
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  try {
    b.onRequest(async () => {
      await released;
      return new Uint8Array([1]);
    });
    const t0 = Date.now();
    await assert.rejects(
      a.request(b.localAddr, new Uint8Array([1]), 200),
      (e) => RpcError.is(e, "deadline_exceeded"),
    );
    assert.ok(Date.now() - t0 >= 150);
  } finally {
    release();
    await a.close();
    await b.close();
  }
});

Deno.test("udp transport: an unreachable peer gives unavailable; a closed transport refuses", async () => {
  const gone = await UdpTransport.bind();
  const addr = gone.localAddr;
  await gone.close();
  const a = await UdpTransport.bind();
  try {
    await assert.rejects(
      a.request(addr, new Uint8Array([1]), 5000),
      (e) => RpcError.is(e, "unavailable"),
    );
    await assert.rejects(
      a.request("not an address", new Uint8Array([1]), 5000),
      (e) => RpcError.is(e, "invalid_argument"),
    );
  } finally {
    await a.close();
  }
  await assert.rejects(
    a.request(addr, new Uint8Array([1]), 100),
    (e) => RpcError.is(e, "unavailable"),
  );
  a.sendPacket(addr, new Uint8Array([1])); // dropped silently after close
  await a.close(); // idempotent
});

Deno.test("udp transport: binding a taken port fails with unavailable; bad options invalid_argument", async () => {
  const a = await UdpTransport.bind();
  try {
    const port = Number(a.localAddr.split(":")[1]);
    await assert.rejects(UdpTransport.bind({ port }), (e) => RpcError.is(e, "unavailable"));
    await assert.rejects(
      UdpTransport.bind({ port: 70000 }),
      (e) => RpcError.is(e, "invalid_argument"),
    );
    await assert.rejects(
      UdpTransport.bind({ maxPacketSize: 10 }),
      (e) => RpcError.is(e, "invalid_argument"),
    );
  } finally {
    await a.close();
  }
});
