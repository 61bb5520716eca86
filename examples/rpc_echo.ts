/**
 * RPC over QUIC in one process (`deno run -A examples/rpc_echo.ts`, under a second): a server
 * with a cluster secret and unary, server-streaming and bidirectional methods, a client calling
 * each, 20,000 concurrent calls, then a graceful shutdown.
 *
 * @module
 */
import { RpcClient, RpcError, RpcServer } from "../mod.ts";

const server = new RpcServer({ hostname: "127.0.0.1", port: 0, secret: "demo-cluster-secret" })
  .register("add", (req) => {
    const { a, b } = req as { a: number; b: number };
    return { sum: a + b };
  })
  .register("fail", () => {
    throw new Error("this handler always fails");
  })
  .registerServerStream("countdown", async function* (req) {
    for (let i = req as number; i > 0; i--) yield i;
  })
  .registerBidiStream("upper", async function* (reqs) {
    for await (const s of reqs) yield String(s).toUpperCase();
  });
await server.start();
console.log(`server listening on ${server.addr.hostname}:${server.addr.port} (QUIC)`);

const client = await RpcClient.connect({
  hostname: "127.0.0.1",
  port: server.addr.port,
  secret: "demo-cluster-secret",
});
console.log("add(2, 3) =", await client.call("add", { a: 2, b: 3 }));
const sum = await client.call("add", { a: 40, b: 2 }, { timeoutMs: 1000 });
console.log("add(40, 2) with a 1 s deadline =", sum);
try {
  await client.call("fail", null);
} catch (e) {
  if (e instanceof RpcError) console.log(`fail() -> RpcError(${e.code}): ${e.message}`);
}
const counted: number[] = [];
for await (const n of client.serverStream<number>("countdown", 5)) counted.push(n);
console.log("countdown(5) streamed:", counted.join(" "));
async function* words() {
  yield "quic";
  yield "lanes";
}
const upper: string[] = [];
for await (const s of client.bidiStream<string>("upper", words())) upper.push(s);
console.log("upper(bidi):", upper.join(" "));

const t0 = performance.now();
const n = 20_000;
await Promise.all(Array.from({ length: n }, (_, i) => client.call("add", { a: i, b: 1 })));
const secs = (performance.now() - t0) / 1000;
console.log(`${n} concurrent calls in ${secs.toFixed(2)} s (${(n / secs).toFixed(0)} calls/s)`);

await client.close();
await server.close();
console.log("closed cleanly");
