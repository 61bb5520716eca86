/**
 * An `RpcClient` in its own process, for tests where a hostile response could exhaust the
 * caller's memory: `deno run -A tests/_support/rpc_client_fixture.ts <port> <method> <CA PEM>` calls `method`
 * once, then `echo`, and prints `{"first":outcome,"echo":outcome}` where an outcome is
 * `{"ok":value}` or `{"code":RpcError code,"message":...}` (or `{"thrown":...}` for anything else).
 *
 * @module
 */
import { RpcClient, RpcError } from "../../mod.ts";

const [port, method, caPem] = [Number(Deno.args[0]), Deno.args[1], Deno.args[2]];
const client = await RpcClient.connect({ hostname: "127.0.0.1", port, caCerts: [caPem] });
const outcome = async (p: Promise<unknown>) => {
  try {
    return { ok: await p };
  } catch (e) {
    return RpcError.is(e) ? { code: e.code, message: e.message } : { thrown: String(e) };
  }
};
const first = await outcome(client.call(method, null, { timeoutMs: 10_000 }));
const echo = await outcome(client.call("echo", "still alive", { timeoutMs: 10_000 }));
console.log(JSON.stringify({ first, echo }));
await client.close();
