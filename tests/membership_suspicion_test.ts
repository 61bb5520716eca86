import assert from "node:assert/strict";
import { suspicionTimeoutMs } from "../src/membership/config.ts";
import { Awareness } from "../src/membership/awareness.ts";
import { Suspicion, suspicionTimeout } from "../src/membership/suspicion.ts";
import type { Clock } from "../src/membership/transport.ts";

/** A manual clock: timers fire only when advanced. */
class ManualClock implements Clock {
  t = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    const h = this.#next++;
    this.#timers.set(h, { at: this.t + ms, fn });
    return h;
  }
  clearTimeout(h: number): void {
    this.#timers.delete(h);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let best: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!best || e[1].at < best[1].at)) best = e;
      if (!best) break;
      this.#timers.delete(best[0]);
      this.t = best[1].at;
      best[1].fn();
    }
    this.t = end;
  }
}

Deno.test("suspicion: timeout math — max with no confirmations, min with k, log-shrinking between", () => {
  assert.equal(suspicionTimeout(0, 3, 1000, 6000), 6000);
  assert.equal(suspicionTimeout(3, 3, 1000, 6000), 1000);
  assert.equal(suspicionTimeout(10, 3, 1000, 6000), 1000);
  const one = suspicionTimeout(1, 3, 1000, 6000);
  const two = suspicionTimeout(2, 3, 1000, 6000);
  assert.equal(one, Math.floor(6000 - 5000 * Math.log(2) / Math.log(4))); // 3500
  assert.ok(6000 > one && one > two && two > 1000);
  // k < 1 (Lifeguard off or tiny cluster): fixed at min.
  assert.equal(suspicionTimeout(0, 0, 1000, 6000), 1000);
});

Deno.test("suspicion: lower bound scales with log10 N (memberlist formula)", () => {
  assert.equal(suspicionTimeoutMs(4, 1, 1000), 4000);
  assert.equal(suspicionTimeoutMs(4, 10, 1000), 4000);
  assert.equal(suspicionTimeoutMs(4, 100, 1000), 8000);
  assert.equal(suspicionTimeoutMs(4, 1000, 1000), 12000);
});

Deno.test("suspicion: independent confirmations bring the deadline forward; duplicates do not", () => {
  const clock = new ManualClock();
  let fired = 0;
  const s = new Suspicion(clock, "a", 3, 1000, 6000, () => fired++);
  clock.advance(500);
  assert.equal(s.confirm("a"), false); // the original suspecter
  assert.equal(s.confirm("b"), true);
  assert.equal(s.confirm("b"), false);
  assert.equal(s.timeoutMs, 3500);
  clock.advance(2900); // t = 3400
  assert.equal(fired, 0);
  clock.advance(200); // t = 3600 > 3500
  assert.equal(fired, 1);
});

Deno.test("suspicion: a confirmation past the shrunk deadline fires at once; cancel stops it", () => {
  const clock = new ManualClock();
  let fired = 0;
  const s = new Suspicion(clock, "a", 2, 1000, 6000, () => fired++);
  clock.advance(4000);
  s.confirm("b");
  s.confirm("c"); // timeout now 1000, already past
  clock.advance(0);
  assert.equal(fired, 1);
  const t = new Suspicion(clock, "a", 2, 1000, 6000, () => fired++);
  t.cancel();
  clock.advance(10_000);
  assert.equal(fired, 1);
});

Deno.test("awareness: scales timeouts by score + 1, clamped; disabled stays at 1x", () => {
  const a = new Awareness(8);
  assert.equal(a.scale(500), 500);
  a.apply(3);
  assert.equal(a.scale(500), 2000);
  a.apply(100);
  assert.equal(a.score, 7);
  a.apply(-100);
  assert.equal(a.score, 0);
  const off = new Awareness(8, false);
  off.apply(5);
  assert.equal(off.scale(500), 500);
});
