import assert from "node:assert/strict";
import { tickNow } from "../src/tick_clock.ts";

Deno.test("tickNow: one clock read per burst of synchronous work, a fresh one after it", async () => {
  const a = tickNow();
  const spinUntil = performance.now() + 3;
  while (performance.now() < spinUntil) { /* the burst takes 3 ms */ }
  assert.equal(tickNow(), a, "same burst, same timestamp");
  await new Promise((r) => setTimeout(r, 5));
  const b = tickNow();
  assert.ok(b >= a + 3, `a later burst reads the clock again (${b - a} ms later)`);
  assert.ok(Math.abs(b - performance.now()) < 50, "and is current");
});
