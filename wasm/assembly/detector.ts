// Phi accrual failure detector (Hayashibara et al.; Akka's normal-distribution variant), one slot
// per monitored member, struct-of-arrays in linear memory. The TypeScript facade owns the layout
// (it allocates the arrays and passes their addresses to det_layout) and the id <-> slot mapping.
//
// Per slot: a ring buffer of `window` inter-arrival times stored relative to `shift` (the first
// heartbeat estimate, which keeps the running sums small and the variance free of cancellation),
// the running sum and sum of squares of that ring (recomputed exactly each time the ring wraps, so
// rounding never accumulates), the last arrival, the minimum standard deviation and the acceptable
// pause, and the effective mean / standard deviation cached at each arrival.

import { phiOfZ } from "./normal";

let window: i32 = 1;
let shift: f64 = 1000.0;
let firstEstimate: f64 = 1000.0;

let aRing: usize = 0; // f64[capacity * window]
let aCount: usize = 0; // i32[capacity]
let aHead: usize = 0; // i32[capacity], next write index
let aSum: usize = 0; // f64[capacity]
let aSumSq: usize = 0; // f64[capacity]
let aLast: usize = 0; // f64[capacity], NaN = free slot
let aMean: usize = 0; // f64[capacity], mean + acceptable pause
let aStd: usize = 0; // f64[capacity], max(std, min std)
let aMinStd: usize = 0; // f64[capacity]
let aPause: usize = 0; // f64[capacity]
let aOut: usize = 0; // f64[capacity], phi_all results
let aIdx: usize = 0; // i32[capacity], suspects results

// Many detectors share one instance: each has a context struct in linear memory (written by
// det_layout), and the globals above cache the context of the detector used last, so consecutive
// calls for the same detector cost no reloads.
//   [0] i32 window  [8] f64 first-heartbeat estimate  [16..60] u32 array addresses in the order
//   ring, count, head, sum, sumSq, last, mean, std, minStd, pause, out, idx
let current: usize = 0;

function use(ctx: usize): void {
  if (ctx == current) return;
  current = ctx;
  window = load<i32>(ctx, 0);
  firstEstimate = load<f64>(ctx, 8);
  shift = firstEstimate;
  aRing = <usize> load<u32>(ctx, 16);
  aCount = <usize> load<u32>(ctx, 20);
  aHead = <usize> load<u32>(ctx, 24);
  aSum = <usize> load<u32>(ctx, 28);
  aSumSq = <usize> load<u32>(ctx, 32);
  aLast = <usize> load<u32>(ctx, 36);
  aMean = <usize> load<u32>(ctx, 40);
  aStd = <usize> load<u32>(ctx, 44);
  aMinStd = <usize> load<u32>(ctx, 48);
  aPause = <usize> load<u32>(ctx, 52);
  aOut = <usize> load<u32>(ctx, 56);
  aIdx = <usize> load<u32>(ctx, 60);
}

/** Writes a detector's context (again after the facade grows its arrays). */
export function det_layout(
  ctx: usize,
  win: i32,
  estimate: f64,
  ring: usize,
  count: usize,
  head: usize,
  sum: usize,
  sumSq: usize,
  last: usize,
  mean: usize,
  std: usize,
  minStd: usize,
  pause: usize,
  out: usize,
  idx: usize,
): void {
  store<i32>(ctx, win, 0);
  store<f64>(ctx, estimate, 8);
  store<u32>(ctx, <u32> ring, 16);
  store<u32>(ctx, <u32> count, 20);
  store<u32>(ctx, <u32> head, 24);
  store<u32>(ctx, <u32> sum, 28);
  store<u32>(ctx, <u32> sumSq, 32);
  store<u32>(ctx, <u32> last, 36);
  store<u32>(ctx, <u32> mean, 40);
  store<u32>(ctx, <u32> std, 44);
  store<u32>(ctx, <u32> minStd, 48);
  store<u32>(ctx, <u32> pause, 52);
  store<u32>(ctx, <u32> out, 56);
  store<u32>(ctx, <u32> idx, 60);
  current = 0; // reload on next use
}

function f64At(base: usize, slot: i32): usize {
  return base + (<usize> slot << 3);
}

function i32At(base: usize, slot: i32): usize {
  return base + (<usize> slot << 2);
}

function refreshEstimate(slot: i32): void {
  const n = <f64> load<i32>(i32At(aCount, slot));
  const m1 = load<f64>(f64At(aSum, slot)) / n;
  let variance = load<f64>(f64At(aSumSq, slot)) / n - m1 * m1;
  if (variance < 0.0) variance = 0.0;
  const std = Math.sqrt(variance);
  const minStd = load<f64>(f64At(aMinStd, slot));
  store<f64>(f64At(aMean, slot), shift + m1 + load<f64>(f64At(aPause, slot)));
  store<f64>(f64At(aStd, slot), std > minStd ? std : minStd);
}

function push(slot: i32, interval: f64): void {
  const d = interval - shift;
  const ring = aRing + ((<usize> slot * <usize> window) << 3);
  const count = load<i32>(i32At(aCount, slot));
  let head = load<i32>(i32At(aHead, slot));
  let s1 = load<f64>(f64At(aSum, slot));
  let s2 = load<f64>(f64At(aSumSq, slot));
  const at = ring + (<usize> head << 3);
  if (count == window) {
    const old = load<f64>(at);
    s1 -= old;
    s2 -= old * old;
  } else {
    store<i32>(i32At(aCount, slot), count + 1);
  }
  store<f64>(at, d);
  s1 += d;
  s2 += d * d;
  head++;
  if (head == window) {
    // The ring is full and wraps: recompute the sums exactly so rounding never accumulates.
    head = 0;
    s1 = 0.0;
    s2 = 0.0;
    for (let i = 0; i < window; i++) {
      const x = load<f64>(ring + (<usize> i << 3));
      s1 += x;
      s2 += x * x;
    }
  }
  store<i32>(i32At(aHead, slot), head);
  store<f64>(f64At(aSum, slot), s1);
  store<f64>(f64At(aSumSq, slot), s2);
}

/**
 * Starts monitoring `slot` at its first arrival `now`. Like Akka, the history is seeded with two
 * intervals, estimate -/+ estimate/4 (mean = estimate, std = estimate/4).
 */
export function det_open(ctx: usize, slot: i32, now: f64, minStd: f64, pause: f64): void {
  use(ctx);
  store<i32>(i32At(aCount, slot), 0);
  store<i32>(i32At(aHead, slot), 0);
  store<f64>(f64At(aSum, slot), 0.0);
  store<f64>(f64At(aSumSq, slot), 0.0);
  store<f64>(f64At(aMinStd, slot), minStd);
  store<f64>(f64At(aPause, slot), pause);
  const quarter = firstEstimate / 4.0;
  push(slot, firstEstimate - quarter);
  push(slot, firstEstimate + quarter);
  store<f64>(f64At(aLast, slot), now);
  refreshEstimate(slot);
}

/** Frees `slot`: phi_all reports 0 for it and suspects skips it. */
export function det_close(ctx: usize, slot: i32): void {
  use(ctx);
  store<f64>(f64At(aLast, slot), NaN);
}

/** Changes the per-slot minimum standard deviation and acceptable pause. */
export function det_configure(ctx: usize, slot: i32, minStd: f64, pause: f64): void {
  use(ctx);
  store<f64>(f64At(aMinStd, slot), minStd);
  store<f64>(f64At(aPause, slot), pause);
  refreshEstimate(slot);
}

function phiAt(slot: i32, now: f64): f64 {
  const elapsed = now - load<f64>(f64At(aLast, slot));
  return phiOfZ((elapsed - load<f64>(f64At(aMean, slot))) / load<f64>(f64At(aStd, slot)));
}

/**
 * Records an arrival at `now`. As in Akka, the interval is added to the history only when the
 * member was available (phi < threshold) at that moment, so the first arrival after a failure does
 * not skew the statistics; an arrival earlier than the last one is ignored.
 */
export function det_heartbeat(ctx: usize, slot: i32, now: f64, threshold: f64): void {
  use(ctx);
  const last = load<f64>(f64At(aLast, slot));
  const interval = now - last;
  if (!(interval >= 0.0)) return;
  if (phiAt(slot, now) < threshold) {
    push(slot, interval);
    refreshEstimate(slot);
  }
  store<f64>(f64At(aLast, slot), now);
}

/** phi of one slot at `now`. */
export function det_phi(ctx: usize, slot: i32, now: f64): f64 {
  use(ctx);
  return phiAt(slot, now);
}

/** Writes phi of slots [0, n) at `now` into the result array (0 for free slots). */
export function det_phi_all(ctx: usize, now: f64, n: i32): void {
  use(ctx);
  for (let s = 0; s < n; s++) {
    const last = load<f64>(f64At(aLast, s));
    let phi = 0.0;
    if (last == last) {
      phi = phiOfZ((now - last - load<f64>(f64At(aMean, s))) / load<f64>(f64At(aStd, s)));
    }
    store<f64>(f64At(aOut, s), phi);
  }
}

/** Writes the slots in [0, n) whose phi at `now` is >= threshold into the index array; returns how many. */
export function det_suspects(ctx: usize, now: f64, n: i32, threshold: f64): i32 {
  use(ctx);
  let k = 0;
  for (let s = 0; s < n; s++) {
    const last = load<f64>(f64At(aLast, s));
    if (last != last) continue;
    const z = (now - last - load<f64>(f64At(aMean, s))) / load<f64>(f64At(aStd, s));
    // phi(z) < log10(2) < threshold for z < 0 whenever threshold > 0.302: skip the exp/log1p.
    if (z < 0.0 && threshold > 0.302) continue;
    if (phiOfZ(z) >= threshold) {
      store<i32>(i32At(aIdx, k), s);
      k++;
    }
  }
  return k;
}

/** Mean (with pause) and std the next phi uses, for inspection: which = 0 mean, 1 std. */
export function det_estimate(ctx: usize, slot: i32, which: i32): f64 {
  use(ctx);
  return which == 0 ? load<f64>(f64At(aMean, slot)) : load<f64>(f64At(aStd, slot));
}
