import assert from "node:assert/strict";
import { PhiAccrualDetector, RpcError } from "../mod.ts";

// -log10(Q(z)) to 20 digits (mpmath, 40-digit erfc).
const REFERENCE: [number, number][] = [
  [0.5, 0.51069198926524077447],
  [1, 0.79954554149197050003],
  [2, 1.643016080140937048],
  [3, 2.8696990359293690772],
  [5, 6.5426456723906544963],
  [7, 11.892853637475489837],
  [7.07, 12.110884110729912997],
  [7.1, 12.204965458299451929],
  [8, 15.206142551017154558],
  [10, 23.118053405486075894],
  [20, 88.56009534307559192],
  [40, 349.43700645934584209],
];

/** A member with only its first heartbeat has mean 1000 and std 250 (seeded history). */
function seeded(): PhiAccrualDetector {
  const d = new PhiAccrualDetector();
  d.heartbeat("m", 0);
  return d;
}

Deno.test("phi: matches -log10 of the normal upper tail to 1e-9 relative, including z = 40", () => {
  const d = seeded();
  for (const [z, expected] of REFERENCE) {
    const got = d.phi("m", 1000 + 250 * z);
    assert.ok(Math.abs(got - expected) / expected < 1e-9, `z=${z}: ${got} vs ${expected}`);
  }
  // Below the mean phi is small but exact: Q(-1) = 1 - Q(1).
  const below = d.phi("m", 1000 - 250);
  assert.ok(Math.abs(below - -Math.log10(1 - 0.15865525393145705)) < 1e-12, `${below}`);
});

Deno.test("phi: keeps growing past 10 without a clamp or Infinity", () => {
  const d = seeded();
  let prev = -1;
  for (let t = 1000; t <= 1_000_000; t += 997) {
    const phi = d.phi("m", t);
    assert.ok(Number.isFinite(phi), `phi at ${t} is ${phi}`);
    assert.ok(phi > prev, `phi must increase: ${phi} after ${prev} at ${t}`);
    prev = phi;
  }
  assert.ok(prev > 1e6);
  // A threshold above 10 is usable: suspects(t, 12) flips exactly where phi crosses 12.
  assert.deepEqual(d.suspects(1000 + 250 * 7.0, 12), []);
  assert.deepEqual(d.suspects(1000 + 250 * 7.1, 12), ["m"]);
});

Deno.test("phi: regular arrivals every 1 s keep phi < 1; 10 s of silence then gives phi > 8", () => {
  const d = new PhiAccrualDetector();
  let t = 0;
  for (let i = 0; i < 200; i++, t += 1000) {
    if (i > 0) assert.ok(d.phi("a", t) < 1, `phi ${d.phi("a", t)} at beat ${i}`);
    d.heartbeat("a", t);
    assert.ok(d.isAvailable("a", t));
  }
  const last = t - 1000;
  assert.ok(d.phi("a", last + 10_000) > 8);
  assert.equal(d.isAvailable("a", last + 10_000), false);
  assert.deepEqual(d.suspects(last + 10_000), ["a"]);
});

/** Silence (ms) after the last of 300 arrivals, jittered by ±jitterMs, until phi reaches 8. */
function timeToSuspicion(jitterMs: number): number {
  const d = new PhiAccrualDetector();
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  let t = 0;
  let last = 0;
  for (let i = 0; i < 300; i++) {
    d.heartbeat("a", t);
    last = t;
    t += 1000 + (rand() * 2 - 1) * jitterMs;
  }
  let lo = 0;
  let hi = 1_000_000;
  while (hi - lo > 1) {
    const mid = (lo + hi) / 2;
    if (d.phi("a", last + mid) >= 8) hi = mid;
    else lo = mid;
  }
  return hi;
}

Deno.test("phi: noisy arrivals raise the time to suspicion", () => {
  const regular = timeToSuspicion(0);
  const noisy = timeToSuspicion(400);
  const noisier = timeToSuspicion(900);
  assert.ok(regular > 1000 && regular < 3000, `regular ${regular}`);
  assert.ok(noisy > regular * 1.2, `noisy ${noisy} vs regular ${regular}`);
  assert.ok(noisier > noisy, `noisier ${noisier} vs noisy ${noisy}`);
});

Deno.test("phi: the first heartbeat after an outage does not enter the history", () => {
  const d = new PhiAccrualDetector();
  for (let t = 0; t <= 20_000; t += 1000) d.heartbeat("a", t);
  const before = d.estimate("a")!;
  d.heartbeat("a", 80_000); // 60 s outage: phi far above 8 at arrival
  const after = d.estimate("a")!;
  assert.equal(after.samples, before.samples);
  assert.equal(after.meanMs, before.meanMs);
  d.heartbeat("a", 81_000); // back to normal: recorded
  assert.equal(d.estimate("a")!.samples, before.samples + 1);
  assert.ok(d.phi("a", 81_500) < 1);
});

Deno.test("phi: acceptable pause and min std deviation shift suspicion, per member too", () => {
  const plain = new PhiAccrualDetector();
  const paused = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 3000 });
  for (let t = 0; t <= 30_000; t += 1000) {
    plain.heartbeat("a", t);
    paused.heartbeat("a", t);
  }
  assert.ok(plain.phi("a", 33_000) > 8);
  assert.ok(paused.phi("a", 33_000) < 1);
  assert.equal(paused.estimate("a")!.meanMs, 4000);
  plain.configure("a", { acceptableHeartbeatPauseMs: 3000, minStdDeviationMs: 500 });
  assert.equal(plain.estimate("a")!.meanMs, 4000);
  assert.equal(plain.estimate("a")!.stdDeviationMs, 500);
  assert.ok(plain.phi("a", 33_000) < 1);
  assert.throws(() => plain.configure("nobody", {}), (e) => RpcError.is(e, "not_found"));
});

Deno.test("phi: unknown members, remove, slot reuse and growth past the initial capacity", () => {
  const d = new PhiAccrualDetector({ capacity: 2, maxSampleSize: 50 });
  assert.equal(d.phi("ghost", 5), 0);
  assert.equal(d.isAvailable("ghost", 5), true);
  assert.equal(d.has("ghost"), false);
  for (let i = 0; i < 100; i++) {
    for (let t = 0; t <= 5000; t += 500 + i) d.heartbeat(`m${i}`, t);
  }
  assert.equal(d.size, 100);
  const phis = d.phiAll(9000);
  assert.equal(phis.size, 100);
  for (let i = 0; i < 100; i++) assert.equal(phis.get(`m${i}`), d.phi(`m${i}`, 9000));
  assert.ok(phis.get("m0")! > 8, "m0 is 4 s late on 0.5 s beats");
  d.remove("m0");
  d.remove("m0");
  assert.equal(d.has("m0"), false);
  assert.equal(d.size, 99);
  assert.equal(d.phi("m0", 9000), 0);
  assert.ok(!d.suspects(100_000).includes("m0"));
  assert.equal(d.suspects(100_000).length, 99);
  d.heartbeat("fresh", 9000); // reuses m0's slot with fresh state
  assert.equal(d.estimate("fresh")!.samples, 2);
  assert.equal(d.estimate("fresh")!.meanMs, 1000);
  assert.ok(d.phi("fresh", 9500) < 1);
  assert.deepEqual(d.ids().length, 100);
});

Deno.test("phi: bad options and inputs are RpcError invalid_argument", () => {
  const bad: Record<string, number>[] = [
    { threshold: 0 },
    { threshold: NaN },
    { maxSampleSize: 0 },
    { maxSampleSize: 1001 },
    { maxSampleSize: 2.5 },
    { minStdDeviationMs: 0 },
    { acceptableHeartbeatPauseMs: -1 },
    { firstHeartbeatEstimateMs: Infinity },
    { capacity: 0 },
  ];
  for (const o of bad) {
    assert.throws(
      () => new PhiAccrualDetector(o),
      (e) => RpcError.is(e, "invalid_argument"),
      JSON.stringify(o),
    );
  }
  const d = new PhiAccrualDetector();
  assert.throws(() => d.heartbeat("a", NaN), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(
    () => d.heartbeat(42 as unknown as string, 1),
    (e) => RpcError.is(e, "invalid_argument"),
  );
  assert.throws(() => d.phi("a", Infinity), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(() => d.suspects(1, NaN), (e) => RpcError.is(e, "invalid_argument"));
  // Out-of-order arrivals are ignored, not recorded as negative intervals.
  d.heartbeat("a", 1000);
  d.heartbeat("a", 2000);
  d.heartbeat("a", 1500);
  assert.equal(d.estimate("a")!.samples, 3);
  assert.ok(d.phi("a", 2500) < 1);
});

Deno.test("phi: a detector larger than the core's memory limit is RpcError resource_exhausted", () => {
  // 2^24 slots × 1000 samples × 8 bytes is far past the 2 GiB core limit: refused up front.
  assert.throws(
    () => new PhiAccrualDetector({ capacity: 1 << 24 }),
    (e) => RpcError.is(e, "resource_exhausted"),
  );
  const d = new PhiAccrualDetector(); // the core is still usable afterwards
  d.heartbeat("a", 0);
  assert.ok(d.phi("a", 500) < 1);
});
