/**
 * Lifeguard's local health awareness: a score raised when this node itself looks unhealthy (its
 * probes miss nacks it should have received, it has to refute suspicions of itself) and lowered
 * by successful probes. Timeouts are scaled by `score + 1`, so a slow or starved node waits longer
 * before accusing others instead of spraying false suspicions.
 *
 * @module
 */

/** The local health score, 0 (healthy) to `max − 1`. */
export class Awareness {
  readonly #max: number;
  readonly #enabled: boolean;
  #score = 0;

  /**
   * @param max the awareness multiplier ceiling (timeouts scale up to ×max)
   * @param enabled false turns the mechanism off (score stays 0)
   */
  constructor(max: number, enabled = true) {
    this.#max = max;
    this.#enabled = enabled;
  }

  /** Current score. */
  get score(): number {
    return this.#score;
  }

  /** Adds `delta` (negative for good news), clamped to [0, max − 1]. */
  apply(delta: number): void {
    if (!this.#enabled) return;
    this.#score = Math.min(this.#max - 1, Math.max(0, this.#score + delta));
  }

  /** `timeoutMs × (score + 1)`. */
  scale(timeoutMs: number): number {
    return timeoutMs * (this.#score + 1);
  }
}
