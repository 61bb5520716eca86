/**
 * A monotonic clock read at most once per burst of synchronous work: the first read stores
 * `performance.now()` and queues a microtask that forgets it, so every later read before that
 * microtask runs gets the stored value. Calls issued, and responses handled, in one burst (one
 * read of a lane carries many responses) share a timestamp.
 *
 * Why: `performance.now()` is an op call (~100 ns here); two reads per call were about a third
 * of the cluster layer's own per-call cost (CPU profile of `bench/client.ts` (b)). The error
 * is bounded by the burst's duration, microseconds, against latencies the balancer weighs in
 * milliseconds.
 *
 * @module
 */

let cached = -1;
const forget = (): void => {
  cached = -1;
};

/** `performance.now()`, shared by everything that reads it within one burst of work. */
export function tickNow(): number {
  if (cached < 0) {
    cached = performance.now();
    queueMicrotask(forget);
  }
  return cached;
}
