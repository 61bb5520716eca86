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
