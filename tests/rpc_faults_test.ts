import assert from "node:assert/strict";
import {
  createDevCa,
  defaultDevCa,
  issueDevCertificate,
  RPC_ALPN,
  RPC_CLOSE_CODES,
  RpcClient,
  RpcError,
  RpcServer,
} from "../mod.ts";
import { waitFor } from "./_support/wait.ts";

Deno.test("rpc faults: garbage on a lane closes only that connection; other clients are unaffected", async () => {
  const server = new RpcServer().register("ping", () => "pong");
  await server.start();
  const port = server.addr.port;
  const before = await RpcClient.connect({ hostname: "127.0.0.1", port });
  const ca = await defaultDevCa();
  const raw = await Deno.connectQuic({
    hostname: "127.0.0.1",
    port,
    alpnProtocols: [RPC_ALPN],
    caCerts: [ca.certPem],
    serverName: "localhost",
  });
  try {
    assert.equal(await before.call("ping", null), "pong");
    const stream = await raw.createBidirectionalStream();
    const w = stream.writable.getWriter();
    await w.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: example\r\n\r\n"));
    const info = await raw.closed.catch((e) => e);
    assert.equal(
      info.closeCode,
      RPC_CLOSE_CODES.PROTOCOL_ERROR,
      `closed with ${JSON.stringify(info)}`,
    );
    await waitFor(() => server.stats().protocolErrors === 1, "the protocol error counted");
    // The client connected before and one connecting after both work.
    assert.equal(await before.call("ping", null), "pong");
    const after = await RpcClient.connect({ hostname: "127.0.0.1", port });
    assert.equal(await after.call("ping", null), "pong");
    await after.close();
    assert.equal(server.stats().protocolErrors, 1);
  } finally {
    raw.endpoint.close();
    await before.close();
    await server.close();
  }
});

Deno.test("rpc faults: a frame with a valid header but a truncated request is a protocol error", async () => {
  const server = new RpcServer().register("ping", () => "pong");
  await server.start();
  const ca = await defaultDevCa();
  const raw = await Deno.connectQuic({
    hostname: "127.0.0.1",
    port: server.addr.port,
    alpnProtocols: [RPC_ALPN],
    caCerts: [ca.certPem],
    serverName: "localhost",
  });
  try {
    const stream = await raw.createBidirectionalStream();
    const w = stream.writable.getWriter();
    // LANE_OPEN, then a REQUEST whose method length (200) runs past the frame's end.
    const laneOpen = [0, 0, 0, 6, 5, 0, 0, 0, 0, 0];
    const badRequest = [0, 0, 0, 9, 1, 0, 0, 0, 0, 1, 200, 65, 66];
    await w.write(new Uint8Array([...laneOpen, ...badRequest]));
    const info = await raw.closed.catch((e) => e);
    assert.equal(info.closeCode, RPC_CLOSE_CODES.PROTOCOL_ERROR);
    await waitFor(() => server.stats().protocolErrors === 1, "the protocol error counted");
  } finally {
    raw.endpoint.close();
    await server.close();
  }
});

Deno.test("rpc faults: a wrong or missing secret gives unauthenticated; the right one works", async () => {
  let handlerRuns = 0;
  const server = new RpcServer({ secret: "correct horse battery staple" }).register("ping", () => {
    handlerRuns++;
    return "pong";
  });
  await server.start();
  const port = server.addr.port;
  try {
    await assert.rejects(
      RpcClient.connect({ hostname: "127.0.0.1", port, secret: "wrong secret" }),
      (e) => RpcError.is(e, "unauthenticated"),
    );
    await assert.rejects(
      RpcClient.connect({ hostname: "127.0.0.1", port }),
      (e) => RpcError.is(e, "unauthenticated"),
    );
    assert.equal(handlerRuns, 0);
    assert.equal(server.stats().authFailures, 2);
    const ok = await RpcClient.connect({
      hostname: "127.0.0.1",
      port,
      secret: "correct horse battery staple",
    });
    assert.equal(await ok.call("ping", null), "pong");
    await ok.close();
  } finally {
    await server.close();
  }
});

Deno.test("rpc faults: close() lets in-flight calls finish, then refuses new work", async () => {
  const release: (() => void)[] = [];
  const server = new RpcServer({ drainTimeoutMs: 10_000 }).register(
    "hold",
    (req) => new Promise((r) => release.push(() => r(req))),
  );
  await server.start();
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    const inflight = [client.call("hold", "a"), client.call("hold", "b")];
    await waitFor(() => release.length === 2, "both calls in their handlers");
    const closing = server.close();
    let closed = false;
    closing.then(() => closed = true);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false, "close() waits for in-flight calls");
    release.forEach((r) => r());
    assert.deepEqual(await Promise.all(inflight), ["a", "b"]);
    await closing;
    await assert.rejects(
      client.call("hold", "c", { timeoutMs: 1000 }),
      (e) => RpcError.is(e, "unavailable") || RpcError.is(e, "deadline_exceeded"),
    );
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("rpc faults: drainTimeoutMs bounds close(); unfinished calls fail with unavailable", async () => {
  const server = new RpcServer({ drainTimeoutMs: 200 }).register(
    "never",
    () => new Promise(() => {}),
  );
  await server.start();
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    const p = client.call("never", null);
    await waitFor(() => server.stats().activeCalls === 1, "the call active at the server");
    await server.close();
    await assert.rejects(p, (e) => RpcError.is(e, "unavailable"));
  } finally {
    await client.close();
  }
});

Deno.test("rpc faults: a warm reconnect after GOAWAY (maxConnectionAgeMs) uses QUIC 0-RTT", async () => {
  const server = new RpcServer({ maxConnectionAgeMs: 150, drainTimeoutMs: 2000 }).register(
    "ping",
    () => "pong",
  );
  await server.start();
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    const deadline = Date.now() + 10_000;
    while (client.stats().connects < 3 && Date.now() < deadline) {
      assert.equal(await client.call("ping", null, { timeoutMs: 5000 }), "pong");
      await new Promise((r) => setTimeout(r, 20));
    }
    const s = client.stats();
    assert.ok(s.connects >= 3, `reconnected ${s.connects - 1} times`);
    assert.ok(s.zeroRttConnects >= 1, `0-RTT on ${s.zeroRttConnects} of ${s.connects} connects`);
    assert.equal(server.stats().protocolErrors, 0);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("rpc faults: explicit TLS from a fresh CA; a client trusting another CA cannot connect", async () => {
  const ca = await createDevCa();
  const tls = await issueDevCertificate(ca, ["rpc.test", "127.0.0.1"]);
  const server = new RpcServer({ tls }).register("ping", () => "pong");
  await server.start();
  const port = server.addr.port;
  try {
    const ok = await RpcClient.connect({
      hostname: "127.0.0.1",
      port,
      caCerts: [ca.certPem],
      serverName: "rpc.test",
    });
    assert.equal(await ok.call("ping", null), "pong");
    await ok.close();
    await assert.rejects(
      RpcClient.connect({ hostname: "127.0.0.1", port, devCa: await createDevCa() }),
      (e) => RpcError.is(e, "unavailable"),
    );
    await assert.rejects(
      RpcClient.connect({
        hostname: "127.0.0.1",
        port,
        caCerts: [ca.certPem],
        serverName: "other",
      }),
      (e) => RpcError.is(e, "unavailable"),
    );
  } finally {
    await server.close();
  }
});

// The server runs in a child process: killing a process is a real server restart, and Deno
// frees a closed QUIC endpoint's port only at garbage collection, so the same process could
// not rebind it promptly.
function spawnServer(ca: { certPem: string; keyPem: string }, port: number) {
  const mod = new URL("../mod.ts", import.meta.url).href;
  const code = `
    import { RpcServer } from ${JSON.stringify(mod)};
    const server = new RpcServer({ port: Number(Deno.env.get("RPC_PORT")),
      devCa: JSON.parse(Deno.env.get("RPC_CA")) }).register("pid", () => Deno.pid);
    await server.start();
    console.log(server.addr.port);
    Deno.addSignalListener("SIGTERM", async () => { await server.close(); Deno.exit(0); });
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--unstable-net",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      code,
    ],
    env: { RPC_PORT: String(port), RPC_CA: JSON.stringify(ca) },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const portLine = (async () => {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("server child exited before listening");
      text += value;
    }
    reader.cancel();
    return Number(text.trim());
  })();
  return { child, port: portLine };
}

Deno.test("rpc faults: the server restarted on the same port; the client reconnects by itself", async () => {
  const ca = await createDevCa();
  const first = spawnServer(ca, 0);
  const port = await first.port;
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port, devCa: ca });
  let second: ReturnType<typeof spawnServer> | undefined;
  try {
    const pid1 = await client.call<number>("pid", null, { timeoutMs: 5000 });
    assert.equal(pid1, first.child.pid);
    first.child.kill("SIGTERM");
    await first.child.status;
    // While no server listens, calls fail with a typed error instead of hanging.
    await assert.rejects(
      client.call("pid", null, { timeoutMs: 3000 }),
      (e) => RpcError.is(e, "unavailable") || RpcError.is(e, "deadline_exceeded"),
    );
    second = spawnServer(ca, port);
    assert.equal(await second.port, port);
    let pid2: number | undefined;
    const deadline = Date.now() + 20_000;
    while (pid2 === undefined && Date.now() < deadline) {
      try {
        pid2 = await client.call<number>("pid", null, { timeoutMs: 3000 });
      } catch (e) {
        assert.ok(RpcError.is(e), `typed error expected, got ${e}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(pid2, second.child.pid);
    assert.ok(client.stats().connects >= 2);
  } finally {
    await client.close();
    for (const s of [first, second]) {
      if (!s) continue;
      try {
        s.child.kill("SIGTERM");
      } catch { /* exited */ }
      await s.child.status;
    }
  }
});
