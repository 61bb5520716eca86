/**
 * Oracle: every balancer strategy in plain TypeScript over per-member objects (reference for
 * src/balance; used only by tests and bench). Same PRNG (xoshiro128** seeded by splitmix32), same
 * hashes, same tie-breaking by candidate position, so choices match the wasm core exactly.
 *
 * @module
 */

type Strategy =
  | "round_robin"
  | "random"
  | "least_connections"
  | "p2c_peak_ewma"
  | "weighted_random"
  | "consistent_hash";

interface Member {
  active: number;
  ewma: number;
  stamp: number;
  weight: number;
  eject: number;
  hash: number;
}

/** A candidate list: ids as requested plus the round-robin cursor and least connections' streak. */
export interface OracleSet {
  requested: string[];
  cursor: number;
  /** Position of least connections' last pick, and how many picks in a row it has had. */
  last: number;
  streak: number;
  /** When the current streak began. */
  streakAt: number;
}

/** Least connections' default streak limit (`tieStreak`). */
export const STREAK = 1023;

/** Least connections' default streak time bound, ms (`tieStreakMs`). */
export const STREAK_MS = 250;

const PENALTY = 1e12;
const TWO_POW_M32 = 2.3283064365386963e-10;

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** xoshiro128**, seeded with splitmix32. */
export class Xoshiro128 {
  s = new Uint32Array(4);
  constructor(seed: number) {
    let a = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      a = (a + 0x9e3779b9) | 0;
      let t = Math.imul(a ^ (a >>> 16), 0x21f0aaad);
      t = Math.imul(t ^ (t >>> 15), 0x735a2d97);
      this.s[i] = t ^ (t >>> 15);
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }
  next(): number {
    const s = this.s;
    const x = Math.imul(s[1], 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 11) | (s[3] >>> 21);
    return result;
  }
  below(n: number): number {
    const i = Math.floor(this.next() * TWO_POW_M32 * n);
    return i < n ? i : n - 1;
  }
  unit(): number {
    return this.next() * TWO_POW_M32;
  }
}

/** Reference balancer. */
export class OracleBalancer {
  readonly members = new Map<string, Member>();
  readonly rng: Xoshiro128;
  horizon = -Infinity;

  constructor(
    readonly strategy: Strategy,
    seed: number,
    readonly tau: number,
    readonly now: () => number,
    readonly tieStreak = STREAK,
    readonly tieStreakMs = STREAK_MS,
  ) {
    this.rng = new Xoshiro128(seed);
  }

  add(id: string, weight = 1): void {
    const m = this.members.get(id);
    if (m) {
      m.weight = weight;
      return;
    }
    this.members.set(id, {
      active: 0,
      ewma: 0,
      stamp: this.now(),
      weight,
      eject: -Infinity,
      hash: fmix(fnv1a(id)),
    });
  }
  remove(id: string): void {
    this.members.delete(id);
  }
  candidates(ids: readonly string[]): OracleSet {
    return { requested: [...new Set(ids)], cursor: 0, last: 0, streak: 0, streakAt: 0 };
  }
  start(id: string): void {
    const m = this.members.get(id);
    if (m) m.active++;
  }
  finish(id: string, latency: number, ok: boolean): void {
    const m = this.members.get(id);
    if (!m) return;
    const now = this.now();
    if (m.active > 0) m.active--;
    const sample = !ok && latency < m.ewma ? m.ewma : latency;
    if (sample > m.ewma) m.ewma = sample;
    else {
      const w = Math.exp(-Math.max(0, now - m.stamp) / this.tau);
      m.ewma = m.ewma * w + sample * (1 - w);
    }
    m.stamp = now;
  }
  eject(id: string, until: number): void {
    const m = this.members.get(id);
    if (!m) return;
    m.eject = until;
    if (until > this.horizon) this.horizon = until;
  }
  decayed(m: Member, now: number): number {
    const dt = now - m.stamp;
    return dt <= 0 ? m.ewma : m.ewma * Math.exp(-dt / this.tau);
  }
  cost(m: Member, now: number): number {
    const c = this.decayed(m, now);
    if (c === 0) return m.active === 0 ? 0 : PENALTY + m.active;
    return c * (m.active + 1);
  }

  select(set: OracleSet, key?: string): string | undefined {
    const ids = set.requested.filter((id) => this.members.has(id));
    const n = ids.length;
    if (n === 0) return undefined;
    const now = this.now();
    const ok = (id: string) => !(this.members.get(id)!.eject > now);
    const anyEjected = now < this.horizon;
    const avail = () => ids.filter(ok);
    switch (this.strategy) {
      case "round_robin": {
        const start = set.cursor >= n ? 0 : set.cursor;
        for (let k = 0; k < n; k++) {
          const i = (start + k) % n;
          if (ok(ids[i])) {
            set.cursor = (i + 1) % n;
            return ids[i];
          }
        }
        return undefined;
      }
      case "least_connections": {
        // Positions in `ids`, as the core keeps them; a tie goes to the last pick until it has
        // had tieStreak in a row, then at random to one of the other ties.
        const live = ids.map((_, i) => i).filter((i) => ok(ids[i]));
        if (!live.length) return undefined;
        const min = Math.min(...live.map((i) => this.members.get(ids[i])!.active));
        const ties = live.filter((i) => this.members.get(ids[i])!.active === min);
        // A streak that has lasted tieStreakMs is full: the next tie goes elsewhere.
        if (this.tieStreakMs > 0 && set.streak > 0 && now - set.streakAt >= this.tieStreakMs) {
          set.streak = this.tieStreak;
        }
        let pos = ties[0];
        if (ties.length > 1) {
          const k = set.streak > 0 ? ties.indexOf(set.last) : -1;
          if (k >= 0 && set.streak < this.tieStreak) pos = set.last;
          else if (k >= 0) {
            let r = this.rng.below(ties.length - 1);
            if (r >= k) r++;
            pos = ties[r];
          } else pos = ties[this.rng.below(ties.length)];
        }
        set.streak = pos === set.last && set.streak > 0 ? Math.min(set.streak + 1, 1023) : 1;
        if (set.streak === 1) set.streakAt = now;
        set.last = pos;
        return ids[pos];
      }
      case "p2c_peak_ewma": {
        const pool = anyEjected ? avail() : ids;
        if (!pool.length) return undefined;
        if (pool.length === 1) return pool[0];
        const a = this.rng.below(pool.length);
        let b = this.rng.below(pool.length - 1);
        if (b >= a) b++;
        const ca = this.cost(this.members.get(pool[a])!, now);
        const cb = this.cost(this.members.get(pool[b])!, now);
        return ca <= cb ? pool[a] : pool[b];
      }
      case "weighted_random": {
        const cum: number[] = [];
        let c = 0;
        for (const id of ids) cum.push(c += this.members.get(id)!.weight);
        const r = this.rng.unit() * cum[n - 1];
        let i = cum.findIndex((x) => x > r);
        if (i < 0) i = n - 1;
        if (!anyEjected || ok(ids[i])) return ids[i];
        const live = avail();
        if (!live.length) return undefined;
        const total = live.reduce((t, id) => t + this.members.get(id)!.weight, 0);
        const r2 = this.rng.unit() * total;
        let acc = 0;
        for (const id of live) {
          acc += this.members.get(id)!.weight;
          if (acc > r2) return id;
        }
        return live[live.length - 1];
      }
      case "consistent_hash":
        if (key !== undefined) {
          const bucket = fmix(fnv1a(key)) >>> 16;
          let best: string | undefined;
          let bestScore = -1;
          for (const id of ids) {
            if (!ok(id)) continue;
            const score = fmix((bucket ^ this.members.get(id)!.hash) >>> 0);
            if (score > bestScore) {
              best = id;
              bestScore = score;
            }
          }
          return best;
        }
      // falls through: no key → random
      case "random": {
        const id = ids[this.rng.below(n)];
        if (!anyEjected || ok(id)) return id;
        const live = avail();
        return live.length ? live[this.rng.below(live.length)] : undefined;
      }
    }
  }
}
