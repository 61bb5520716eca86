/**
 * The real-time {@linkcode Clock}: `Date.now` and the platform timers. The protocol only ever
 * touches time through a `Clock`, so the simulator can substitute virtual time.
 *
 * @module
 */
import type { Clock } from "./transport.ts";

/** Wall-clock time and real timers. */
export const systemClock: Clock = {
  now: (): number => Date.now(),
  setTimeout: (fn: () => void, ms: number): number => setTimeout(fn, ms) as unknown as number,
  clearTimeout: (handle: number): void => clearTimeout(handle),
};

/**
 * A {@linkcode Clock} that remembers every timer it set, so the node can cancel all of them (and
 * wake every sleeper) at shutdown whichever mechanism set them.
 */
export class TrackedClock implements Clock {
  readonly #inner: Clock;
  readonly #timers = new Set<number>();
  readonly #sleepers = new Set<() => void>();

  /** @param inner the clock that really keeps time */
  constructor(inner: Clock) {
    this.#inner = inner;
  }

  /** The inner clock's time. */
  now(): number {
    return this.#inner.now();
  }

  /** Sets a timer on the inner clock and tracks it until it fires or is cleared. */
  setTimeout(fn: () => void, ms: number): number {
    const handle = this.#inner.setTimeout(() => {
      this.#timers.delete(handle);
      fn();
    }, ms);
    this.#timers.add(handle);
    return handle;
  }

  /** Clears a tracked timer. */
  clearTimeout(handle: number): void {
    this.#inner.clearTimeout(handle);
    this.#timers.delete(handle);
  }

  /** Resolves after `ms` (at once when {@linkcode cancelAll} runs first). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#sleepers.delete(wake);
        resolve();
      };
      this.#sleepers.add(wake);
      this.setTimeout(wake, ms);
    });
  }

  /** Cancels every pending timer and wakes every sleeper (shutdown). */
  cancelAll(): void {
    for (const t of this.#timers) this.#inner.clearTimeout(t);
    this.#timers.clear();
    for (const wake of this.#sleepers) wake();
    this.#sleepers.clear();
  }
}
