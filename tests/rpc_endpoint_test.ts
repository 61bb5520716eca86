import assert from "node:assert/strict";
import { RpcClient, RpcError, RpcServer } from "../mod.ts";

Deno.test("rpc endpoint: clients sharing one QuicEndpoint call their own servers; closing one leaves the endpoint to the others", async () => {
  const a = new RpcServer().register("who", () => "a");
  const b = new RpcServer().register("who", () => "b");
  await a.start();
  await b.start();
  const endpoint = new Deno.QuicEndpoint({ hostname: "0.0.0.0", port: 0 });
  const ca = await RpcClient.connect({ hostname: "127.0.0.1", port: a.addr.port, endpoint });
  const cb = await RpcClient.connect({ hostname: "127.0.0.1", port: b.addr.port, endpoint });
  try {
    const calls = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? cb : ca).call("who", i)),
    );
    assert.deepEqual(calls, Array.from({ length: 200 }, (_, i) => (i % 2 ? "b" : "a")));
    await ca.close();
    assert.equal(await cb.call("who", null, { timeoutMs: 5000 }), "b", "endpoint still open");
    // A new client may still join the shared endpoint.
    const ca2 = await RpcClient.connect({ hostname: "127.0.0.1", port: a.addr.port, endpoint });
    assert.equal(await ca2.call("who", null, { timeoutMs: 5000 }), "a");
    await ca2.close();
  } finally {
    await ca.close();
    await cb.close();
    endpoint.close();
    await a.close();
    await b.close();
  }
});

Deno.test("rpc endpoint: warm reconnects through a shared endpoint use 0-RTT to each of two servers", async () => {
  const servers = [0, 1].map((i) =>
    new RpcServer({ maxConnectionAgeMs: 150, drainTimeoutMs: 2000 }).register("ping", () => i)
  );
  for (const s of servers) await s.start();
  const endpoint = new Deno.QuicEndpoint({ hostname: "0.0.0.0", port: 0 });
  const clients: RpcClient[] = [];
  try {
    for (const s of servers) {
      clients.push(await RpcClient.connect({ hostname: "127.0.0.1", port: s.addr.port, endpoint }));
    }
    const deadline = Date.now() + 15_000;
    while (clients.some((c) => c.stats().connects < 3) && Date.now() < deadline) {
      for (const [i, c] of clients.entries()) {
        assert.equal(await c.call("ping", null, { timeoutMs: 5000 }), i);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const [i, c] of clients.entries()) {
      const s = c.stats();
      assert.ok(s.connects >= 3, `client ${i} reconnected ${s.connects - 1} times`);
      assert.ok(s.zeroRttConnects >= 1, `client ${i}: 0-RTT on ${s.zeroRttConnects}/${s.connects}`);
    }
    for (const s of servers) assert.equal(s.stats().protocolErrors, 0);
  } finally {
    for (const c of clients) await c.close();
    endpoint.close();
    for (const s of servers) await s.close();
  }
});

Deno.test("rpc endpoint: an endpoint option that is not a QuicEndpoint is invalid_argument", async () => {
  await assert.rejects(
    RpcClient.connect({
      hostname: "127.0.0.1",
      port: 1,
      endpoint: {} as unknown as Deno.QuicEndpoint,
    }),
    (e) => RpcError.is(e, "invalid_argument") && e.message.includes("endpoint"),
  );
});
