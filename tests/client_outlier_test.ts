import assert from "node:assert/strict";
import { OutlierDetector, RpcError } from "../mod.ts";

function setup(options = {}) {
  let now = 0;
  const ejections: [string, number][] = [];
  const d = new OutlierDetector({ eject: (id, until) => ejections.push([id, until]) }, () => now, {
    consecutiveFailures: 3,
    baseEjectionMs: 1000,
    maxEjectionMs: 3000,
    ...options,
  });
  return { d, ejections, advance: (ms: number) => (now += ms) };
}

Deno.test("OutlierDetector ejects after consecutive failures; a success resets the streak", () => {
  const { d, ejections } = setup();
  d.failure("w1", 4);
  d.failure("w1", 4);
  d.success("w1");
  d.failure("w1", 4);
  d.failure("w1", 4);
  assert.deepEqual(ejections, []);
  assert.equal(d.failure("w1", 4), 1000);
  assert.deepEqual(ejections, [["w1", 1000]]);
  assert.ok(d.isEjected("w1"));
  assert.equal(d.totalEjections, 1);
});

Deno.test("OutlierDetector back-off doubles per ejection up to the maximum, then lets the worker back", () => {
  const { d, ejections, advance } = setup();
  const fail3 = () => [0, 1, 2].map(() => d.failure("w1", 4));
  fail3();
  advance(1001);
  assert.ok(!d.isEjected("w1"));
  fail3();
  advance(2001);
  fail3();
  assert.deepEqual(ejections.map(([, until]) => until), [1000, 1001 + 2000, 3002 + 3000]);
});

Deno.test("OutlierDetector never ejects more than the allowed share of the pool", () => {
  const { d, ejections } = setup({ maxEjectionPercent: 50 });
  for (const id of ["w1", "w2", "w3"]) for (let i = 0; i < 3; i++) d.failure(id, 3);
  assert.deepEqual(ejections.map(([id]) => id), ["w1"]); // floor(3 * 50%) = 1
  for (let i = 0; i < 3; i++) d.failure("w4", 4);
  assert.deepEqual(ejections.map(([id]) => id), ["w1", "w4"]); // floor(4 * 50%) = 2
});

Deno.test("OutlierDetector rejects bad options with invalid_argument", () => {
  const t = { eject() {} };
  for (
    const o of [
      { consecutiveFailures: 0 },
      { baseEjectionMs: 0 },
      { baseEjectionMs: 5, maxEjectionMs: 1 },
      { maxEjectionPercent: 101 },
    ]
  ) {
    assert.throws(
      () => new OutlierDetector(t, () => 0, o),
      (e) => RpcError.is(e, "invalid_argument"),
    );
  }
});
