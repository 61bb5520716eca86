/**
 * Client interceptors: middleware around `ClusterClient.callWorker`, one run per logical call
 * (failover attempts happen inside `next`). Each sees the method, the request, the options
 * (`meta`, `deadline`, `timeoutMs`, `filter`, ...) and the result or error; it may reject the
 * call (throw), decorate it (change `request` or `options`, e.g. add metadata) or change the
 * result. With none installed `callWorker` runs directly.
 *
 * @module
 */

import type { WorkerCallOptions } from "./cluster_client.ts";

/** One `callWorker` call as an interceptor sees it. */
export interface ClientCall {
  /** The method called. */
  readonly method: string;
  /** The request; may be replaced. */
  request: unknown;
  /** The call's options; may be replaced (copy before changing: the caller owns the object). */
  options: WorkerCallOptions;
}

/** Calls the rest of the chain (the next interceptor, at last the balanced call). */
export type ClientNext = (call: ClientCall) => Promise<unknown>;

/**
 * Middleware around `ClusterClient.callWorker`: return `next(call)` to let the call through,
 * throw an `RpcError` to reject it.
 *
 * @example Adds a request id to every call's metadata
 * ```ts
 * import type { ClientInterceptor } from "@rpcnet/cluster";
 *
 * const requestId: ClientInterceptor = (call, next) => {
 *   call.options = { ...call.options, meta: { ...call.options.meta, "x-request-id": crypto.randomUUID() } };
 *   return next(call);
 * };
 * ```
 */
export type ClientInterceptor = (call: ClientCall, next: ClientNext) => Promise<unknown>;

/**
 * Composes interceptors, first outermost, ending in `invoke`; `undefined` when there are none.
 */
export function composeClientInterceptors(
  interceptors: readonly ClientInterceptor[],
  invoke: ClientNext,
): ClientNext | undefined {
  if (interceptors.length === 0) return undefined;
  let next = invoke;
  for (let i = interceptors.length - 1; i >= 0; i--) {
    const interceptor = interceptors[i];
    const inner = next;
    next = (call) => {
      try {
        return Promise.resolve(interceptor(call, inner));
      } catch (e) {
        return Promise.reject(e);
      }
    };
  }
  return next;
}
