/**
 * Call observation for the server's own bookkeeping (the admin service's per-node call meter):
 * a registered handler is wrapped so that every call reports its method and its error, if any,
 * and a sample of calls also their duration. Synchronous unary handlers stay synchronous (the
 * lane's fast path).
 *
 * Reading the clock twice costs about 0.3 µs, so durations are sampled: a handler times one call
 * in `stride`, and the stride doubles while timed calls come less than 1 ms apart (up to 1 in
 * 256) and halves when they are more than 10 ms apart. At low rates every call is timed; at any
 * rate about a thousand calls a second are, per handler.
 *
 * @module
 */

/**
 * Told once per handler call when it ends: the method, the handler's time in milliseconds
 * (until the promise settled or the response stream ended) when this call was timed, else
 * `undefined` (streaming calls are always timed), the error it threw, or `undefined` on
 * success, and whether it was a streaming call (server, client or bidi streaming; the unary
 * interceptors do not see those).
 */
export type CallObserver = (
  method: string,
  durationMs: number | undefined,
  error: unknown,
  streaming: boolean,
) => void;

const MAX_STRIDE = 256;

/** Decides which calls of one handler are timed (see the module doc). */
class Sampler {
  #skip = 0;
  #stride = 1;
  #lastTimed = -Infinity;

  /** The start time of a timed call, or -1 for a call that is only counted. */
  start(): number {
    if (this.#skip > 0) {
      this.#skip--;
      return -1;
    }
    const now = performance.now();
    const gap = now - this.#lastTimed;
    this.#lastTimed = now;
    if (gap < 1 && this.#stride < MAX_STRIDE) this.#stride *= 2;
    else if (gap > 10 && this.#stride > 1) this.#stride >>= 1;
    this.#skip = this.#stride - 1;
    return now;
  }
}

/** Times every call: for streaming calls, which are long compared with a clock read. */
const EVERY_CALL = { start: (): number => performance.now() };

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === "object" &&
    typeof (v as PromiseLike<unknown>).then === "function";
}

type Single = (a: unknown, b: unknown, c: unknown) => unknown;

/**
 * Wraps a unary or client-streaming handler `(request, ctx)`, or, with `method` undefined, a
 * fallback `(method, request, ctx)` (one result, maybe a promise). `streaming` marks a
 * client-streaming handler: every call is timed and reported as streaming.
 */
export function observeSingle<F extends (...args: never[]) => unknown>(
  method: string | undefined,
  fn: F,
  observer: CallObserver,
  streaming = false,
): F {
  const sampler = streaming ? EVERY_CALL : new Sampler();
  const call = fn as unknown as Single;
  const wrapped: Single = (a, b, c) => {
    const name = method ?? (a as string);
    const t0 = sampler.start();
    let result: unknown;
    try {
      result = call(a, b, c);
    } catch (e) {
      observer(name, t0 < 0 ? undefined : performance.now() - t0, e ?? "error", streaming);
      throw e;
    }
    if (!isThenable(result)) {
      observer(name, t0 < 0 ? undefined : performance.now() - t0, undefined, streaming);
      return result;
    }
    return Promise.resolve(result).then((v) => {
      observer(name, t0 < 0 ? undefined : performance.now() - t0, undefined, streaming);
      return v;
    }, (e) => {
      observer(name, t0 < 0 ? undefined : performance.now() - t0, e ?? "error", streaming);
      throw e;
    });
  };
  return wrapped as unknown as F;
}

/** Wraps a server- or bidi-streaming handler (an async iterable of responses). */
export function observeStream<A extends unknown[]>(
  method: string,
  fn: (...args: A) => AsyncIterable<unknown>,
  observer: CallObserver,
): (...args: A) => AsyncIterable<unknown> {
  return async function* (...args: A): AsyncGenerator<unknown> {
    // Streams are long compared with a clock read: every one is timed.
    const t0 = performance.now();
    let error: unknown;
    try {
      yield* fn(...args);
    } catch (e) {
      error = e ?? "error";
      throw e;
    } finally {
      // A caller that stops reading ends the stream early: that counts as a success here.
      observer(method, performance.now() - t0, error, true);
    }
  };
}
