/**
 * A small seeded pseudo-random generator so simulations are reproducible.
 *
 * @module
 */

/**
 * Mulberry32: 32 bits of state, fast, good enough for loss/jitter draws (not cryptographic).
 *
 * @example
 * ```ts
 * import { SeededRandom } from "@rpcnet/cluster/sim";
 * const rng = new SeededRandom(42);
 * console.log(rng.next() === new SeededRandom(42).next()); // true
 * ```
 */
export class SeededRandom {
  #state: number;

  /**
   * Creates a generator.
   *
   * @param seed any integer; equal seeds give equal sequences.
   */
  constructor(seed: number) {
    this.#state = (seed >>> 0) || 0x9e3779b9;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}
