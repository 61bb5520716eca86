/**
 * Unary calls at 64 in flight for a while, client and server in this process, for
 * tests/rpc_gc_test.ts, which runs it with `--v8-flags=--trace-gc-nvp` and reads V8's GC trace
 * from stdout (this fixture writes nothing there; its summary goes to stderr):
 *
 *   deno run -A --v8-flags=--trace-gc-nvp tests/_support/rpc_gc_fixture.ts [ms]
 *
 * The handler is async, so the server keeps its calls in flight by id too.
 *
 * @module
 */
import { RpcClient, RpcServer } from "../../mod.ts";

const ms = Number(Deno.args[0] ?? 2500);
const server = new RpcServer().register("echo", async (req) => {
  await Promise.resolve();
  return req;
});
await server.start();
const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
const payload = "x".repeat(64);
let calls = 0;
const until = performance.now() + ms;
await Promise.all(Array.from({ length: 64 }, async () => {
  while (performance.now() < until) {
    await client.call("echo", payload, { timeoutMs: 30_000 });
    calls++;
  }
}));
await client.close();
await server.close();
Deno.stderr.writeSync(new TextEncoder().encode(JSON.stringify({ calls }) + "\n"));
Deno.exit(0);
