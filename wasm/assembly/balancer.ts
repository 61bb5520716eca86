// Load-balancer selection over struct-of-arrays slot state. The TypeScript facade owns the layout
// and the id <-> slot mapping; a candidate set is a region it wrote once:
//   [0] i32 round-robin cursor (least connections: last pick and streak)  [4] i32 n
//   [8] i32 weights version of cum
//   [12] u32 address of the consistent-hash bucket table (0: none)
//   [16] i32 slots[n]  then (8-aligned) f64 cumulative weights[n]
// Ties and orders are always by position in the candidate set, never by slot number, so the
// TypeScript oracle (which has no slots) makes identical choices.

import { prng_load, prng_next, prng_save, prng_seed, rand01, randBelow } from "./prng";

export const ROUND_ROBIN: i32 = 0;
export const RANDOM: i32 = 1;
export const LEAST_CONNECTIONS: i32 = 2;
export const P2C_PEAK_EWMA: i32 = 3;
export const WEIGHTED_RANDOM: i32 = 4;
export const CONSISTENT_HASH: i32 = 5;

/** Load of a member with no latency sample yet but calls in flight (Finagle's penalty). */
const PENALTY: f64 = 1.0e12;

let strategy: i32 = 0;
let tau: f64 = 10000.0;
let weightsVersion: i32 = 1;
let ejectHorizon: f64 = -Infinity; // nothing is ejected at times >= this
// Least connections' streak limit (the balancer's tieStreak): calls in a row that a tie goes to
// the member picked last before it goes to another one. 1: every tie at random.
let streakLimit: i32 = 16;

let aActive: usize = 0; // i32
let aEwma: usize = 0; // f64
let aStamp: usize = 0; // f64, time of the last EWMA update
let aWeight: usize = 0; // f64
let aEject: usize = 0; // f64, ejected while now < value
let aHash: usize = 0; // u32, mixed hash of the member id
let aScratch: usize = 0; // i32[capacity]

// Many balancers share one instance: each has a context struct in linear memory, and the
// globals above (including the PRNG state) cache the context of the balancer used last; switching
// saves the mutable part (weights version, eject horizon, PRNG) and loads the other.
//   [0] i32 strategy  [4] i32 weights version  [8] f64 tau  [16] f64 eject horizon
//   [24..48] u32 addresses of active, ewma, stamp, weight, eject, hash, scratch  [52] PRNG state
//   [68] i32 least connections' streak limit
let current: usize = 0;

function save(): void {
  store<i32>(current, weightsVersion, 4);
  store<f64>(current, ejectHorizon, 16);
  prng_save(current + 52);
}

function use(ctx: usize): void {
  if (ctx == current) return;
  if (current != 0) save();
  current = ctx;
  strategy = load<i32>(ctx, 0);
  weightsVersion = load<i32>(ctx, 4);
  tau = load<f64>(ctx, 8);
  ejectHorizon = load<f64>(ctx, 16);
  aActive = <usize> load<u32>(ctx, 24);
  aEwma = <usize> load<u32>(ctx, 28);
  aStamp = <usize> load<u32>(ctx, 32);
  aWeight = <usize> load<u32>(ctx, 36);
  aEject = <usize> load<u32>(ctx, 40);
  aHash = <usize> load<u32>(ctx, 44);
  aScratch = <usize> load<u32>(ctx, 48);
  prng_load(ctx + 52);
  streakLimit = load<i32>(ctx, 68);
}

/**
 * Initializes a balancer's context: strategy, decay time, PRNG seed words and least connections'
 * streak limit.
 */
export function bal_init(
  ctx: usize,
  strat: i32,
  decayMs: f64,
  a: u32,
  b: u32,
  c: u32,
  d: u32,
  streak: i32,
): void {
  if (current == ctx) current = 0; // a reused context address: drop the stale cache
  else if (current != 0) {
    save();
    current = 0;
  }
  store<i32>(ctx, strat, 0);
  store<i32>(ctx, 1, 4);
  store<f64>(ctx, decayMs, 8);
  store<f64>(ctx, -Infinity, 16);
  prng_seed(a, b, c, d);
  prng_save(ctx + 52);
  store<i32>(ctx, streak, 68);
}

/** Called before a balancer's context is freed, so a later reuse of the address is not mistaken. */
export function bal_forget(ctx: usize): void {
  if (current == ctx) current = 0;
}

/** Writes the array addresses into a balancer's context (again after the facade grows them). */
export function bal_layout(
  ctx: usize,
  active: usize,
  ewma: usize,
  stamp: usize,
  weight: usize,
  eject: usize,
  hash: usize,
  scratch: usize,
): void {
  if (current != 0) {
    save();
    current = 0;
  }
  store<u32>(ctx, <u32> active, 24);
  store<u32>(ctx, <u32> ewma, 28);
  store<u32>(ctx, <u32> stamp, 32);
  store<u32>(ctx, <u32> weight, 36);
  store<u32>(ctx, <u32> eject, 40);
  store<u32>(ctx, <u32> hash, 44);
  store<u32>(ctx, <u32> scratch, 48);
}

function f64At(base: usize, slot: i32): usize {
  return base + (<usize> slot << 3);
}

function i32At(base: usize, slot: i32): usize {
  return base + (<usize> slot << 2);
}

/** Initializes a slot for a newly added member. */
export function bal_open(ctx: usize, slot: i32, weight: f64, hash: u32, now: f64): void {
  use(ctx);
  store<i32>(i32At(aActive, slot), 0);
  store<f64>(f64At(aEwma, slot), 0.0);
  store<f64>(f64At(aStamp, slot), now);
  store<f64>(f64At(aWeight, slot), weight);
  store<f64>(f64At(aEject, slot), -Infinity);
  store<u32>(i32At(aHash, slot), hash);
}

/** Changes a member's weight (invalidates every set's cumulative weights). */
export function bal_weight(ctx: usize, slot: i32, weight: f64): void {
  use(ctx);
  store<f64>(f64At(aWeight, slot), weight);
  weightsVersion++;
}

/** A call to the member began. */
export function bal_start(ctx: usize, slot: i32): void {
  use(ctx);
  const at = i32At(aActive, slot);
  store<i32>(at, load<i32>(at) + 1);
}

/**
 * A call finished after `latency` ms. Peak EWMA (Finagle/Linkerd): a sample above the current value
 * replaces it at once; otherwise value = value * w + sample * (1 - w), w = exp(-dt / tau). A failed
 * call never lowers the value (its sample counts as max(latency, value)), so a member that fails
 * fast does not attract traffic.
 */
export function bal_finish(ctx: usize, slot: i32, latency: f64, ok: i32, now: f64): void {
  use(ctx);
  const at = i32At(aActive, slot);
  const active = load<i32>(at);
  if (active > 0) store<i32>(at, active - 1);
  const cost = load<f64>(f64At(aEwma, slot));
  // NaN, negative and infinite latencies count as 0 (never poison the EWMA).
  let sample = latency > 0.0 && latency < Infinity ? latency : 0.0;
  if (!ok && sample < cost) sample = cost;
  if (sample > cost) {
    store<f64>(f64At(aEwma, slot), sample);
  } else {
    let dt = now - load<f64>(f64At(aStamp, slot));
    if (dt < 0.0) dt = 0.0;
    const w = Math.exp(-dt / tau);
    store<f64>(f64At(aEwma, slot), cost * w + sample * (1.0 - w));
  }
  store<f64>(f64At(aStamp, slot), now);
}

/** The peak-EWMA latency decayed to `now` (idle members drift back toward zero). */
export function bal_ewma(ctx: usize, slot: i32, now: f64): f64 {
  use(ctx);
  return decayed(slot, now);
}

function decayed(slot: i32, now: f64): f64 {
  const cost = load<f64>(f64At(aEwma, slot));
  const dt = now - load<f64>(f64At(aStamp, slot));
  if (dt <= 0.0) return cost;
  return cost * Math.exp(-dt / tau);
}

/** Excludes the member from selection while now < until. */
export function bal_eject(ctx: usize, slot: i32, until: f64): void {
  use(ctx);
  store<f64>(f64At(aEject, slot), until);
  if (until > ejectHorizon) ejectHorizon = until;
}

function available(slot: i32, now: f64): bool {
  return !(load<f64>(f64At(aEject, slot)) > now);
}

/** Load used by P2C: ewma * (active + 1); a member without samples costs 0 idle, PENALTY busy. */
function load_(slot: i32, now: f64): f64 {
  const active = load<i32>(i32At(aActive, slot));
  const cost = decayed(slot, now);
  if (cost == 0.0) return active == 0 ? 0.0 : PENALTY + <f64> active;
  return cost * <f64> (active + 1);
}

/** Copies the available candidates into scratch; returns how many. */
function compact(slots: usize, n: i32, now: f64): i32 {
  let m = 0;
  for (let i = 0; i < n; i++) {
    const s = load<i32>(slots + (<usize> i << 2));
    if (available(s, now)) {
      store<i32>(aScratch + (<usize> m << 2), s);
      m++;
    }
  }
  return m;
}

function pickRoundRobin(set: usize, slots: usize, n: i32, now: f64): i32 {
  let start = load<i32>(set);
  if (start >= n) start = 0;
  for (let k = 0; k < n; k++) {
    let i = start + k;
    if (i >= n) i -= n;
    const s = load<i32>(slots + (<usize> i << 2));
    if (available(s, now)) {
      store<i32>(set, i + 1 < n ? i + 1 : 0);
      return s;
    }
  }
  return -1;
}

function pickRandom(slots: usize, n: i32, now: f64, anyEjected: bool): i32 {
  const s = load<i32>(slots + (<usize> randBelow(n) << 2));
  if (!anyEjected || available(s, now)) return s;
  const m = compact(slots, n, now);
  if (m == 0) return -1;
  return load<i32>(aScratch + (<usize> randBelow(m) << 2));
}

/**
 * Fewest calls in flight; one pass that keeps the positions of the tied members in scratch. A
 * tie goes to the member picked last until it has had streakLimit picks in a row, then at random
 * to one of the others: calls at low load stay on a warm worker for a streak (instead of waking
 * an idle process per call) and still rotate over all of them. The set's first word (the
 * round-robin cursor, unused here) holds the last pick's position (low 22 bits: a set has at most
 * 2^22 members) and its streak (high 10, so at most 1023).
 */
function pickLeastConnections(set: usize, slots: usize, n: i32, now: f64, anyEjected: bool): i32 {
  const sticky = load<u32>(set);
  const streak = <i32> (sticky >>> 22);
  // No last pick yet: a position no tie has.
  const last = streak > 0 ? <i32> (sticky & 0x3fffff) : -1;
  let least: i32 = i32.MAX_VALUE;
  let ties = 0;
  // Where the last pick is among the ties (positions are kept in order): -1 while it is not one.
  let k = -1;
  for (let i = 0; i < n; i++) {
    const s = load<i32>(slots + (<usize> i << 2));
    if (anyEjected && !available(s, now)) continue;
    const a = load<i32>(i32At(aActive, s));
    if (a > least) continue;
    if (a < least) {
      least = a;
      ties = 0;
      k = -1;
    }
    if (i == last) k = ties;
    store<i32>(aScratch + (<usize> ties << 2), i);
    ties++;
  }
  if (ties == 0) return -1;
  let pos = load<i32>(aScratch);
  if (ties > 1) {
    if (k >= 0 && streak < streakLimit) pos = last;
    else if (k >= 0) {
      let r = <i32> randBelow(ties - 1);
      if (r >= k) r++;
      pos = load<i32>(aScratch + (<usize> r << 2));
    } else pos = load<i32>(aScratch + (<usize> randBelow(ties) << 2));
  }
  const next = pos == last ? min<i32>(streak + 1, 1023) : 1;
  store<u32>(set, (<u32> next << 22) | <u32> pos);
  return load<i32>(slots + (<usize> pos << 2));
}

function twoChoices(slots: usize, n: i32, now: f64): i32 {
  if (n == 1) return load<i32>(slots);
  const a = randBelow(n);
  let b = randBelow(n - 1);
  if (b >= a) b++;
  const sa = load<i32>(slots + (<usize> a << 2));
  const sb = load<i32>(slots + (<usize> b << 2));
  return load_(sa, now) <= load_(sb, now) ? sa : sb;
}

function pickP2C(slots: usize, n: i32, now: f64, anyEjected: bool): i32 {
  if (!anyEjected) return twoChoices(slots, n, now);
  const m = compact(slots, n, now);
  if (m == 0) return -1;
  return twoChoices(aScratch, m, now);
}

function pickWeighted(set: usize, slots: usize, n: i32, now: f64, anyEjected: bool): i32 {
  const cum = (slots + (<usize> n << 2) + 7) & ~<usize> 7;
  if (load<i32>(set, 8) != weightsVersion) {
    let c = 0.0;
    for (let i = 0; i < n; i++) {
      c += load<f64>(f64At(aWeight, load<i32>(slots + (<usize> i << 2))));
      store<f64>(cum + (<usize> i << 3), c);
    }
    store<i32>(set, weightsVersion, 8);
  }
  const total = load<f64>(cum + (<usize> (n - 1) << 3));
  const r = rand01() * total;
  // First position whose cumulative weight exceeds r.
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (load<f64>(cum + (<usize> mid << 3)) > r) hi = mid;
    else lo = mid + 1;
  }
  const s = load<i32>(slots + (<usize> lo << 2));
  if (!anyEjected || available(s, now)) return s;
  // Some candidate is ejected: draw again over the available ones, linearly.
  const m = compact(slots, n, now);
  if (m == 0) return -1;
  let t = 0.0;
  for (let i = 0; i < m; i++) {
    t += load<f64>(f64At(aWeight, load<i32>(aScratch + (<usize> i << 2))));
  }
  const r2 = rand01() * t;
  let acc = 0.0;
  for (let i = 0; i < m; i++) {
    const si = load<i32>(aScratch + (<usize> i << 2));
    acc += load<f64>(f64At(aWeight, si));
    if (acc > r2) return si;
  }
  return load<i32>(aScratch + (<usize> (m - 1) << 2));
}

function fmix32(h: u32): u32 {
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

/**
 * Rendezvous (highest random weight) hashing of a key bucket: the candidate with the highest
 * fmix32(bucket ^ memberHash). Ties go to the earlier position.
 */
function rendezvous(slots: usize, n: i32, now: f64, anyEjected: bool, bucket: u32): i32 {
  let best = -1;
  let bestScore: u32 = 0;
  for (let i = 0; i < n; i++) {
    const s = load<i32>(slots + (<usize> i << 2));
    if (anyEjected && !available(s, now)) continue;
    const score = fmix32(bucket ^ load<u32>(i32At(aHash, s)));
    if (best < 0 || score > bestScore) {
      best = s;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Consistent hashing: a key falls into one of 65536 buckets (top 16 bits of its mixed hash) and
 * the bucket goes to its rendezvous winner. A set may carry a bucket -> owner table (address in
 * header word 3, entries -1 until first use), which makes a keyed select O(1) after the first
 * use of each bucket; the table only caches rendezvous() over all candidates, so results are the
 * same with or without it. An ejected owner falls back to a scan over the available candidates.
 */
function pickConsistent(
  set: usize,
  slots: usize,
  n: i32,
  now: f64,
  anyEjected: bool,
  key: u32,
): i32 {
  const bucket = fmix32(key) >>> 16;
  const table = <usize> load<u32>(set, 12);
  if (table != 0) {
    const at = table + (<usize> bucket << 2);
    let owner = load<i32>(at);
    if (owner < 0) {
      owner = rendezvous(slots, n, now, false, bucket);
      store<i32>(at, owner);
    }
    if (!anyEjected || available(owner, now)) return owner;
  }
  return rendezvous(slots, n, now, anyEjected, bucket);
}

/**
 * Selects a member from the candidate set at `set`; returns its slot, or -1 when the set is empty
 * or every candidate is ejected. `hasKey`/`key` drive consistent hashing (without a key it picks
 * uniformly at random).
 */
export function bal_select(ctx: usize, set: usize, now: f64, hasKey: i32, key: u32): i32 {
  use(ctx);
  const n = load<i32>(set, 4);
  if (n <= 0) return -1;
  const slots = set + 16;
  const anyEjected = now < ejectHorizon;
  switch (strategy) {
    case ROUND_ROBIN:
      return pickRoundRobin(set, slots, n, now);
    case RANDOM:
      return pickRandom(slots, n, now, anyEjected);
    case LEAST_CONNECTIONS:
      return pickLeastConnections(set, slots, n, now, anyEjected);
    case P2C_PEAK_EWMA:
      return pickP2C(slots, n, now, anyEjected);
    case WEIGHTED_RANDOM:
      return pickWeighted(set, slots, n, now, anyEjected);
    default:
      if (hasKey) return pickConsistent(set, slots, n, now, anyEjected, key);
      return pickRandom(slots, n, now, anyEjected);
  }
}

/** Exposed so tests can check the generator against the oracle. */
export function bal_random(ctx: usize): u32 {
  use(ctx);
  return prng_next();
}
