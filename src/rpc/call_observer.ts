/**
 * Call observation for the server's own bookkeeping (the admin service's per-node call meter):
 * a registered handler is wrapped so that every call reports its method, the handler's time
 * and its error, if any. Synchronous unary handlers stay synchronous (the lane's fast path).
 *
 * @module
 */

/**
 * Told once per handler call when it ends: the method, the handler's time in milliseconds
 * (until the promise settled or the response stream ended) and the error it threw, or
 * `undefined` on success.
 */
export type CallObserver = (method: string, durationMs: number, error: unknown) => void;

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === "object" &&
    typeof (v as PromiseLike<unknown>).then === "function";
}

/** Wraps a unary or client-streaming handler (one result, maybe a promise). */
export function observeSingle<A extends unknown[]>(
  method: string | undefined,
  fn: (...args: A) => unknown,
  observer: CallObserver,
): (...args: A) => unknown {
  return (...args: A): unknown => {
    // A fallback is told the method as its first argument.
    const name = method ?? (args[0] as string);
    const t0 = performance.now();
    let result: unknown;
    try {
      result = fn(...args);
    } catch (e) {
      observer(name, performance.now() - t0, e ?? "error");
      throw e;
    }
    if (!isThenable(result)) {
      observer(name, performance.now() - t0, undefined);
      return result;
    }
    return Promise.resolve(result).then((v) => {
      observer(name, performance.now() - t0, undefined);
      return v;
    }, (e) => {
      observer(name, performance.now() - t0, e ?? "error");
      throw e;
    });
  };
}

/** Wraps a server- or bidi-streaming handler (an async iterable of responses). */
export function observeStream<A extends unknown[]>(
  method: string,
  fn: (...args: A) => AsyncIterable<unknown>,
  observer: CallObserver,
): (...args: A) => AsyncIterable<unknown> {
  return async function* (...args: A): AsyncGenerator<unknown> {
    const t0 = performance.now();
    let error: unknown;
    try {
      yield* fn(...args);
    } catch (e) {
      error = e ?? "error";
      throw e;
    } finally {
      // A caller that stops reading ends the stream early: that counts as a success here.
      observer(method, performance.now() - t0, error);
    }
  };
}
