/**
 * The latencies of the last few hundred successful calls, and a percentile of them: the delay
 * after which a hedged call sends its second attempt. The percentile is recomputed (a sort of
 * the window) only every `window / 8` samples, so reading it per call is cheap.
 *
 * @module
 */

/**
 * A ring of recent latencies with a cached percentile.
 *
 * @example
 * ```ts
 * import { LatencyWindow } from "@rpcnet/cluster";
 *
 * const w = new LatencyWindow(100);
 * for (let i = 1; i <= 100; i++) w.record(i);
 * console.log(w.percentile(95)); // 95
 * ```
 */
export class LatencyWindow {
  /** Samples kept. */
  readonly size: number;
  #ring: Float64Array;
  #next = 0;
  #count = 0;
  #sinceSort = 0;
  #sorted: Float64Array | undefined;

  /**
   * Creates an empty window.
   *
   * @param size how many recent samples to keep (default 256)
   */
  constructor(size = 256) {
    this.size = size;
    this.#ring = new Float64Array(size);
  }

  /** Samples recorded so far (at most `size` are kept). */
  get count(): number {
    return this.#count;
  }

  /** Records one latency, ms. */
  record(ms: number): void {
    this.#ring[this.#next] = ms;
    this.#next = (this.#next + 1) % this.size;
    if (this.#count < this.size) this.#count++;
    if (++this.#sinceSort >= Math.max(1, this.size >> 3)) this.#sorted = undefined;
  }

  /** The `p`th percentile (0–100) of the kept samples; `undefined` before the first sample. */
  percentile(p: number): number | undefined {
    if (this.#count === 0) return undefined;
    if (this.#sorted === undefined) {
      this.#sorted = this.#ring.slice(0, this.#count).sort();
      this.#sinceSort = 0;
    }
    const s = this.#sorted;
    const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
    return s[rank];
  }
}
