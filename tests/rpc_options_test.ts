import assert from "node:assert/strict";
import { RpcClient, RpcError, RpcServer } from "../mod.ts";

const names = (name: string) => (e: unknown) =>
  RpcError.is(e, "invalid_argument") && e.message.startsWith(`${name} must be`);

Deno.test("rpc options: every bad RpcServer option is invalid_argument naming it, never a TypeError", () => {
  const bad: [string, Record<string, unknown>][] = [
    ["secret", { secret: 12345 }],
    ["secret", { secret: "" }],
    ["secret", { secret: new Uint8Array(4) }],
    ["drainTimeoutMs", { drainTimeoutMs: 2 ** 31 }],
    ["drainTimeoutMs", { drainTimeoutMs: NaN }],
    ["authTimeoutMs", { authTimeoutMs: NaN }],
    ["authTimeoutMs", { authTimeoutMs: 0 }],
    ["maxConnectionAgeMs", { maxConnectionAgeMs: 2 ** 31 }],
    ["maxFrameBytes", { maxFrameBytes: "16m" }],
    ["port", { port: -1 }],
    ["hostname", { hostname: 127001 }],
    ["tls", { tls: "cert.pem" }],
    ["tls.keyPem", { tls: { certPem: "-----BEGIN CERTIFICATE-----" } }],
    ["devCa.certPem", { devCa: { certPem: 1, keyPem: 2 } }],
    ["maxPayloadDepth", { maxPayloadDepth: 1.5 }],
  ];
  for (const [name, o] of bad) {
    assert.throws(() => new RpcServer(o as never), names(name), JSON.stringify(o));
  }
  assert.throws(() => new RpcServer(null as never), names("RpcServer options"));
  assert.throws(
    () => new RpcServer().register("m", () => 1, { encoded: "yes" as never }),
    names("encoded"),
  );
});

Deno.test("rpc options: every bad RpcClient option is invalid_argument naming it, before connecting", async () => {
  const bad: [string, Record<string, unknown>][] = [
    ["hostname", {}],
    ["hostname", { hostname: 7, port: 1 }],
    ["port", { hostname: "127.0.0.1" }],
    ["secret", { hostname: "127.0.0.1", port: 1, secret: { key: "x" } }],
    ["connectTimeoutMs", { hostname: "127.0.0.1", port: 1, connectTimeoutMs: NaN }],
    ["connectTimeoutMs", { hostname: "127.0.0.1", port: 1, connectTimeoutMs: 2 ** 31 }],
    ["lanes", { hostname: "127.0.0.1", port: 1, lanes: 0 }],
    ["caCerts", { hostname: "127.0.0.1", port: 1, caCerts: "pem" }],
    ["caCerts[0]", { hostname: "127.0.0.1", port: 1, caCerts: [1] }],
    ["zeroRtt", { hostname: "127.0.0.1", port: 1, zeroRtt: 1 }],
    ["endpoint", { hostname: "127.0.0.1", port: 1, endpoint: {} }],
    ["maxPayloadElements", { hostname: "127.0.0.1", port: 1, maxPayloadElements: -1 }],
  ];
  for (const [name, o] of bad) {
    await assert.rejects(RpcClient.connect(o as never), names(name), JSON.stringify(o));
  }
  await assert.rejects(RpcClient.connect(null as never), names("RpcClient.connect options"));
});

Deno.test("rpc options: timeoutMs of 2^31 ms or NaN is invalid_argument, not an instant deadline", async () => {
  const server = new RpcServer().register(
    "slow",
    () => new Promise((r) => setTimeout(r, 50, "done")),
  );
  await server.start();
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    for (const timeoutMs of [2 ** 31, 1e12, NaN, -1, Infinity]) {
      await assert.rejects(
        client.call("slow", null, { timeoutMs }),
        names("timeoutMs"),
        `${timeoutMs}`,
      );
      await assert.rejects(
        (async () => {
          for await (const _ of client.serverStream("slow", null, { timeoutMs })) break;
        })(),
        names("timeoutMs"),
      );
    }
    await assert.rejects(client.call("slow", null, { signal: "x" as never }), names("signal"));
    await assert.rejects(client.call("slow", null, { meta: [] as never }), names("meta"));
    // The largest timer that works is accepted and the call completes normally.
    assert.equal(await client.call("slow", null, { timeoutMs: 2 ** 31 - 1 }), "done");
  } finally {
    await client.close();
    await server.close();
  }
});
