/**
 * Server interceptors: middleware around unary handlers. Each sees the method, the caller's
 * metadata and deadline (through `ctx`), the request, and the handler's result or error; it may
 * reject the call (throw), change the request, or change the result. With none installed the
 * server calls handlers directly (one `undefined` check per call).
 *
 * @module
 */

import type { CallContext } from "./types.ts";

/** One unary call as an interceptor sees it. */
export interface ServerCall {
  /** The method called. */
  readonly method: string;
  /** The decoded request (an `EncodedPayload` for encoded handlers); may be replaced. */
  request: unknown;
  /** The handler's context: `meta`, `deadline`, `remoteAddr`, `signal`. */
  readonly ctx: CallContext;
}

/** Calls the rest of the chain (the next interceptor, at last the handler). */
export type ServerNext = (call: ServerCall) => unknown;

/**
 * Middleware around unary handlers: return `next(call)` (or its awaited value, changed) to let
 * the call through, throw an `RpcError` to reject it.
 *
 * @example Rejects calls without a tenant header and times every call
 * ```ts
 * import { RpcError, RpcServer, type ServerInterceptor } from "@rpcnet/cluster";
 *
 * const tenantRequired: ServerInterceptor = async (call, next) => {
 *   if (!call.ctx.meta.tenant) throw new RpcError("unauthenticated", "set meta.tenant");
 *   const t0 = performance.now();
 *   try {
 *     return await next(call);
 *   } finally {
 *     console.log(call.method, performance.now() - t0);
 *   }
 * };
 * const server = new RpcServer({ interceptors: [tenantRequired] });
 * ```
 */
export type ServerInterceptor = (call: ServerCall, next: ServerNext) => unknown;

/** The handler at the end of a chain: `(request, ctx) => result`. */
export type ServerTarget = (request: unknown, ctx: CallContext) => unknown;

/** A call in an interceptor chain, carrying the handler the chain ends in. */
export class InterceptedCall implements ServerCall {
  /** The method called. */
  readonly method: string;
  /** The request. */
  request: unknown;
  /** The handler's context. */
  readonly ctx: CallContext;
  /** The handler the chain ends in. */
  readonly target: ServerTarget;

  /**
   * @param method method name
   * @param request decoded request
   * @param ctx call context
   * @param target the handler
   */
  constructor(method: string, request: unknown, ctx: CallContext, target: ServerTarget) {
    this.method = method;
    this.request = request;
    this.ctx = ctx;
    this.target = target;
  }
}

const invokeTarget: ServerNext = (call) => {
  const c = call as InterceptedCall;
  return c.target(c.request, c.ctx);
};

/**
 * Composes interceptors, first outermost, into one function that runs a call through all of
 * them and then its target; `undefined` when there are none (the server then skips the chain).
 */
export function composeServerInterceptors(
  interceptors: readonly ServerInterceptor[],
): ((call: InterceptedCall) => unknown) | undefined {
  if (interceptors.length === 0) return undefined;
  let next: ServerNext = invokeTarget;
  for (let i = interceptors.length - 1; i >= 0; i--) {
    const interceptor = interceptors[i];
    const inner = next;
    next = (call) => interceptor(call, inner);
  }
  return next as (call: InterceptedCall) => unknown;
}
