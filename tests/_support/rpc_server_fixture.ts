/**
 * An `RpcServer` in its own process, for attack tests that must survive (or observe) the server
 * running out of memory. Run by tests/_support/rpc_helpers.ts `spawnServer`:
 *
 *   deno run -A tests/_support/rpc_server_fixture.ts '<RpcServerOptions as JSON>'
 *
 * Prints one line `{"port":N}` once listening, then `{"rss":bytes}` every 100 ms. Methods:
 * `echo` (returns the request), `stats` (the server's counters), `rss` (resident bytes) and
 * `evil` (answers with the nested-array bytes of issue 9 item 1, undecoded).
 *
 * @module
 */
import { EncodedPayload, RpcServer, type RpcServerStats } from "../../mod.ts";
import { nestedArrayBomb } from "./rpc_helpers.ts";

const options = JSON.parse(Deno.args[0] ?? "{}");
const server: RpcServer = new RpcServer(options)
  .register("echo", (req) => req)
  .register("stats", (): RpcServerStats => server.stats())
  .register("rss", () => Deno.memoryUsage().rss)
  .register("evil", () => new EncodedPayload(nestedArrayBomb()));
await server.start();
const out = (o: unknown) => console.log(JSON.stringify(o));
out({ port: server.addr.port });
setInterval(() => out({ rss: Deno.memoryUsage().rss }), 100);
Deno.addSignalListener("SIGTERM", async () => {
  await server.close();
  Deno.exit(0);
});
