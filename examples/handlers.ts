/**
 * A handlers module for `rpcnet agent --handlers examples/handlers.ts`: every export becomes a
 * method of the node. A plain function is a unary handler, an async generator function a
 * server-streaming one, and `{ kind, handler }` names the kind explicitly.
 *
 * ```sh
 * deno task rpcnet -- agent --ca rpcnet-ca.pem --tag role=worker --handlers examples/handlers.ts …
 * deno task rpcnet -- call compute '{"n": 7}' --filter role=worker --ca rpcnet-ca.pem
 * ```
 *
 * @module
 */
import type { CallContext } from "../mod.ts";

// `rpcnet agent` tells the module its node id in RPCNET_NODE_ID.
const id = Deno.env.get("RPCNET_NODE_ID") ?? "unknown";

/** Unary: squares `n` and says which node answered. */
export function compute(
  request: unknown,
  ctx: CallContext,
): { n: number; square: number; node: string } {
  const n = Number((request as { n?: unknown } | null)?.n ?? 0);
  void ctx;
  return { n, square: n * n, node: id };
}

/** Unary, asynchronous: answers after `ms` milliseconds (default 5). */
export async function slow(request: unknown): Promise<{ waitedMs: number }> {
  const ms = Math.min(10_000, Math.max(0, Number((request as { ms?: unknown } | null)?.ms ?? 5)));
  await new Promise((r) => setTimeout(r, ms));
  return { waitedMs: ms };
}

/** Server stream: counts from 1 to `to` (default 3). */
export async function* count(request: unknown): AsyncGenerator<number> {
  const to = Math.min(1000, Number((request as { to?: unknown } | null)?.to ?? 3));
  for (let i = 1; i <= to; i++) yield i;
}

/** Client stream, named explicitly: sums the numbers sent. */
export const sum = {
  kind: "clientStream" as const,
  handler: async (requests: AsyncIterable<unknown>): Promise<number> => {
    let total = 0;
    for await (const v of requests) total += Number(v);
    return total;
  },
};

/** Method names with dots come from a default-exported object. */
export default {
  "echo.v1": (request: unknown): unknown => request,
};
