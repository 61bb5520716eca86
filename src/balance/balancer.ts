/**
 * The load balancer: strategies run in the wasm core over struct-of-arrays member state; this
 * facade maps member ids to slots and candidate lists to regions of the core's memory.
 *
 * @module
 */
import { RpcError } from "../errors.ts";
import { tickNow } from "../tick_clock.ts";
import {
  type Block,
  blockRegistry,
  CONTEXT_BYTES,
  type CoreInstance,
  sharedCore,
} from "../../wasm/loader.ts";
import { fmix32, fnv1a32, seedWords } from "./hash.ts";

/** The selection strategies. */
export type StrategyName =
  | "round_robin"
  | "random"
  | "least_connections"
  | "p2c_peak_ewma"
  | "weighted_random"
  | "consistent_hash";

/** Every {@linkcode StrategyName}, in the core's numbering order. */
export const STRATEGIES: readonly StrategyName[] = [
  "round_robin",
  "random",
  "least_connections",
  "p2c_peak_ewma",
  "weighted_random",
  "consistent_hash",
];

/** Options for {@linkcode Balancer}. */
export interface BalancerOptions {
  /** How {@linkcode Balancer.select} chooses. */
  strategy: StrategyName;
  /** Seed of the core's PRNG (xoshiro128**); same seed, same calls → same choices. Default random. */
  seed?: number;
  /** Decay time τ of the peak-EWMA latency, ms (> 0). Default 10000. */
  ewmaDecayMs?: number;
  /**
   * `least_connections` only: how many picks in a row a tie (several members with the fewest
   * calls in flight) goes to the member picked last before it goes, at random, to another one;
   * an integer in [1, 1023]. Default 1023. Calls made one or a few at a time then stay on a warm
   * worker for a streak instead of moving to a process that has been waiting (on one host such a
   * process answers slower for tens of ms after it is picked again), and still rotate over every
   * worker. 1 breaks every tie at random.
   */
  tieStreak?: number;
  /**
   * `least_connections` only: the longest a streak lasts, ms. Once this long has passed since it
   * began, the next tie goes to another member even before `tieStreak` picks, so calls made slowly
   * still rotate and a member that joins can get the next tie after this long. 0: no time bound.
   * Default 250.
   */
  tieStreakMs?: number;
  /**
   * Initial member slots; grows by doubling. Default 64. State lives in the process-wide wasm
   * core memory (shared by all detectors and balancers, at most 2 GiB); past it, `add` throws
   * `RpcError("resource_exhausted")`.
   */
  capacity?: number;
  /**
   * Monotonic clock (ms) for EWMA decay and ejection deadlines. Default `performance.now`, read
   * once per burst of synchronous work.
   */
  now?: () => number;
}

/**
 * A prepared candidate list (from {@linkcode Balancer.candidates}): written once into the core's
 * memory, reused by every {@linkcode Balancer.select}. Cache one per filter; it stays valid when
 * members are added or removed (it re-resolves its ids lazily; removed members drop out).
 */
export interface CandidateSet {
  /** The member ids it selects among, in order (known members only, no duplicates). */
  readonly ids: readonly string[];
  /** `ids.length`. */
  readonly size: number;
}

// Candidate region: 16-byte header [cursor, n, weights version, bucket table address], i32 slots,
// f64 cumulative weights. The consistent-hash bucket table (65536 i32 owners, -1 = not computed)
// is allocated only for sets that serve keyed selects, after TABLE_AFTER of them.
const TABLE_BYTES = 65536 * 4;
const TABLE_AFTER = 32;
function setBytes(n: number): number {
  return 16 + ((n * 4 + 7) & ~7) + n * 8;
}

/** Core memory a set holds, freed by release() or when the set is garbage-collected. */
interface SetMemory {
  ptr: number;
  bytes: number;
  table: number;
}

class PreparedSet implements CandidateSet {
  ids: string[] = [];
  size = 0;
  version = -1;
  released = false;
  keyedSelects = 0;
  /** When least connections' current streak began (the balancer's clock). */
  streakAt = 0;
  constructor(
    readonly owner: Balancer,
    readonly requested: readonly string[],
    readonly ptr: number,
    readonly memory: SetMemory,
  ) {}
}

/** Slot arrays in bal_layout order: [name, bytes per element]. */
const ARRAYS = [
  ["active", 4],
  ["ewma", 8],
  ["stamp", 8],
  ["weight", 8],
  ["eject", 8],
  ["hash", 4],
  ["scratch", 4],
] as const;
type ArrayName = (typeof ARRAYS)[number][0];

// The set's first word under least connections: the last pick's position (low 22 bits) and its
// streak (high 10), as the core keeps them.
const STREAK_SHIFT = 22;
const POSITION_MASK = (1 << STREAK_SHIFT) - 1;

/** The longest {@linkcode BalancerOptions.tieStreak}: the streak's 10 bits in the core. */
export const MAX_TIE_STREAK: number = (1 << (32 - STREAK_SHIFT)) - 1;

/** Default of {@linkcode BalancerOptions.tieStreak}. */
// The most the core holds. At one call in flight over 3 worker processes the p50 gap to a direct
// client fell with longer streaks: about 9 µs at 255, none at 1023 (a worker that has waited a
// while stays slower for tens of ms; docs/performance.md).
const DEFAULT_TIE_STREAK = MAX_TIE_STREAK;

/** Default of {@linkcode BalancerOptions.tieStreakMs}. */
const DEFAULT_TIE_STREAK_MS = 250;

/** The most member slots a balancer may hold. */
export const MAX_BALANCER_MEMBERS: number = 1 << 22;

/**
 * Chooses a member for each call. Strategies (selection runs in WebAssembly, batched over a
 * candidate list prepared once):
 *
 * - `round_robin`: in turn, one cursor per candidate set.
 * - `random`: uniform, seedable.
 * - `least_connections`: fewest calls in flight. A tie goes to the member picked last, up to
 *   `tieStreak` (1023) picks in a row, then uniformly at random to one of the others: calls at low
 *   load stay on a warm worker for a streak (no idle process to wake per call) and still rotate.
 * - `p2c_peak_ewma`: power of two choices (Finagle/Linkerd): two distinct random candidates, the
 *   one with the lower cost = ewma × (active + 1) wins. The peak EWMA jumps to any latency above
 *   it and otherwise decays toward new samples with weight exp(-Δt/τ); reads decay it to now, so
 *   an idle slow member is retried eventually. A member without samples costs 0 when idle and a
 *   large penalty when it has calls in flight. A failed call never lowers the EWMA.
 * - `weighted_random`: probability proportional to weight (cumulative weights cached per set).
 * - `consistent_hash`: rendezvous (highest random weight) hashing. A key (FNV-1a, mixed with
 *   murmur3's finalizer) falls into one of 65536 buckets; each bucket belongs to the candidate
 *   with the highest hash of (bucket, member id). Removing a member remaps only the keys it
 *   owned; the choice depends only on the key and the candidate ids, not on seeds or order. A
 *   set serving keyed selects caches bucket owners (256 KiB, after 32 keyed selects), so a
 *   select is O(1) instead of O(candidates). Without a key it picks uniformly at random.
 *
 * Ejected members are skipped until their deadline. Unknown ids are ignored by `start`, `finish`
 * and `eject` (a call may finish after its member left).
 *
 * @example
 * ```ts
 * import { Balancer } from "@rpcnet/cluster";
 *
 * const b = new Balancer({ strategy: "p2c_peak_ewma", seed: 1 });
 * for (const id of ["w1", "w2", "w3"]) b.add(id);
 * const workers = b.candidates(["w1", "w2", "w3"]);
 * const id = b.select(workers)!;
 * b.start(id);
 * b.finish(id, 12.5, true);
 * console.log(b.ewma(id) > 0); // true
 * ```
 */
export class Balancer {
  /** The strategy {@linkcode Balancer.select} uses. */
  readonly strategy: StrategyName;
  /** Decay time of the peak EWMA, ms. */
  readonly ewmaDecayMs: number;
  /** Least connections' streak of picks for the last pick on ties (see `BalancerOptions`). */
  readonly tieStreak: number;
  /** `least_connections`: the longest a streak lasts, ms (0: no time bound). */
  readonly tieStreakMs: number;
  #streakTimed: boolean;

  #wasm: CoreInstance;
  #ctx: number;
  #held: { blocks: Block[]; onFree: () => void };
  #now: () => number;
  #capacity = 0;
  #arrays = {} as Record<ArrayName, number>;
  #slots = new Map<string, number>();
  #ids: (string | undefined)[] = [];
  #freeSlots: number[] = [];
  #highWater = 0;
  #version = 0;
  #timed: boolean;
  #keyed: boolean;
  #ejectHorizon = -Infinity;
  #activeBase = 0;

  /**
   * Creates an empty balancer.
   *
   * @param options strategy, seed, EWMA decay, capacity, clock
   * @throws {RpcError} `invalid_argument` for an unknown strategy or out-of-range option
   */
  constructor(options: BalancerOptions) {
    const code = STRATEGIES.indexOf(options?.strategy);
    if (code < 0) {
      throw new RpcError(
        "invalid_argument",
        `unknown strategy '${options?.strategy}' (one of ${STRATEGIES.join(", ")})`,
      );
    }
    this.strategy = options.strategy;
    this.#timed = this.strategy === "p2c_peak_ewma";
    this.#keyed = this.strategy === "consistent_hash";
    const decay = options.ewmaDecayMs ?? 10_000;
    if (typeof decay !== "number" || !Number.isFinite(decay) || decay <= 0) {
      throw new RpcError(
        "invalid_argument",
        `ewmaDecayMs must be a finite number > 0, got ${decay}`,
      );
    }
    this.ewmaDecayMs = decay;
    const tieStreak = options.tieStreak ?? DEFAULT_TIE_STREAK;
    if (!Number.isInteger(tieStreak) || tieStreak < 1 || tieStreak > MAX_TIE_STREAK) {
      throw new RpcError(
        "invalid_argument",
        `tieStreak must be an integer in [1, ${MAX_TIE_STREAK}] (1: every tie at random), ` +
          `got ${tieStreak}`,
      );
    }
    this.tieStreak = tieStreak;
    const tieStreakMs = options.tieStreakMs ?? DEFAULT_TIE_STREAK_MS;
    if (typeof tieStreakMs !== "number" || !Number.isFinite(tieStreakMs) || tieStreakMs < 0) {
      throw new RpcError(
        "invalid_argument",
        `tieStreakMs must be a finite number >= 0 (0: no time bound), got ${tieStreakMs}`,
      );
    }
    this.tieStreakMs = tieStreakMs;
    this.#streakTimed = this.strategy === "least_connections" && tieStreakMs > 0;
    const capacity = options.capacity ?? 64;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_BALANCER_MEMBERS) {
      throw new RpcError(
        "invalid_argument",
        `capacity must be an integer in [1, ${MAX_BALANCER_MEMBERS}], got ${capacity}`,
      );
    }
    if (options.now !== undefined && typeof options.now !== "function") {
      throw new RpcError("invalid_argument", "now must be a function returning ms");
    }
    const seed = options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    if (typeof seed !== "number" || !Number.isFinite(seed)) {
      throw new RpcError("invalid_argument", `seed must be a finite number, got ${seed}`);
    }
    // The burst's clock by default: `finish` runs once per call, and a clock read (an op call)
    // was a visible part of it; the error is the burst's duration, µs against ms.
    this.#now = options.now ?? tickNow;
    const wasm = this.#wasm = sharedCore();
    const ctx = this.#ctx = wasm.alloc(CONTEXT_BYTES);
    this.#held = { blocks: [[ctx, CONTEXT_BYTES]], onFree: () => wasm.core.bal_forget(ctx) };
    blockRegistry.register(this, this.#held);
    const [a, b, c, d] = seedWords(seed);
    wasm.core.bal_init(ctx, code, decay, a, b, c, d, tieStreak);
    this.#grow(capacity);
  }

  /**
   * Bytes of the shared WebAssembly memory this balancer's member state holds (candidate sets not
   * included).
   */
  get memoryBytes(): number {
    return this.#held.blocks.reduce((sum, [, bytes]) => sum + bytes, 0);
  }

  /** Number of members. */
  get size(): number {
    return this.#slots.size;
  }

  /**
   * Adds a member with a weight (used by `weighted_random`; default 1), or updates the weight of
   * an existing one.
   * @throws {RpcError} `invalid_argument` for a non-string id or a weight that is not finite > 0;
   *   `resource_exhausted` past {@linkcode MAX_BALANCER_MEMBERS}
   */
  add(id: string, weight = 1): void {
    if (typeof id !== "string") {
      throw new RpcError("invalid_argument", `member id must be a string, got ${typeof id}`);
    }
    if (typeof weight !== "number" || !Number.isFinite(weight) || weight <= 0) {
      throw new RpcError("invalid_argument", `weight must be a finite number > 0, got ${weight}`);
    }
    const core = this.#wasm.core;
    const existing = this.#slots.get(id);
    if (existing !== undefined) {
      core.bal_weight(this.#ctx, existing, weight);
      return;
    }
    let slot = this.#freeSlots.pop();
    if (slot === undefined) {
      if (this.#highWater === this.#capacity) {
        if (this.#capacity >= MAX_BALANCER_MEMBERS) {
          throw new RpcError("resource_exhausted", `balancer is full (${MAX_BALANCER_MEMBERS})`);
        }
        this.#grow(Math.min(this.#capacity * 2, MAX_BALANCER_MEMBERS));
      }
      slot = this.#highWater++;
    }
    this.#slots.set(id, slot);
    this.#ids[slot] = id;
    core.bal_open(this.#ctx, slot, weight, fmix32(fnv1a32(id)), this.#now());
    this.#version++;
  }

  /** Removes a member (its slot is reused); sets drop it at their next select. No-op if unknown. */
  remove(id: string): void {
    const slot = this.#slots.get(id);
    if (slot === undefined) return;
    this.#slots.delete(id);
    this.#ids[slot] = undefined;
    this.#freeSlots.push(slot);
    this.#version++;
  }

  /** Whether `id` is a member. */
  has(id: string): boolean {
    return this.#slots.has(id);
  }

  /**
   * Prepares a candidate list for {@linkcode Balancer.select}: resolves the ids (unknown ids are
   * skipped, duplicates dropped) and writes their slots into the core once.
   */
  candidates(ids: readonly string[]): CandidateSet {
    if (!Array.isArray(ids)) {
      throw new RpcError("invalid_argument", "candidates needs an array of ids");
    }
    const requested = [...new Set(ids)];
    const bytes = setBytes(requested.length);
    const ptr = this.#wasm.alloc(bytes);
    const memory: SetMemory = { ptr, bytes, table: 0 };
    const set = new PreparedSet(this, requested, ptr, memory);
    setRegistry.register(set, memory, set);
    this.#wasm.i32[ptr >> 2] = 0; // round-robin cursor; least connections: no last pick
    this.#wasm.i32[(ptr >> 2) + 3] = 0; // no bucket table
    this.#resolve(set);
    return set;
  }

  /**
   * Chooses a member of `set` (`key` is used by `consistent_hash` and ignored by the other
   * strategies). Returns undefined when the set is empty or every candidate is ejected.
   * @throws {RpcError} `invalid_argument` for a set from another balancer
   */
  select(set: CandidateSet, key?: string): string | undefined {
    if (!(set instanceof PreparedSet) || set.owner !== this) {
      throw new RpcError("invalid_argument", "candidate set was not prepared by this balancer");
    }
    if (set.version !== this.#version) {
      if (set.released) throw new RpcError("invalid_argument", "candidate set was released");
      this.#resolve(set);
    }
    if (set.size === 0) return undefined;
    // Reading the clock costs more than most selections (performance.now ≈ 80 ns), so it is read
    // only when the choice depends on it: P2C's decay, or an ejection that may still be running.
    // Otherwise +Infinity tells the core that nothing is ejected.
    let now = Infinity;
    if (this.#timed || this.#ejectHorizon !== -Infinity) {
      now = this.#now();
      if (now >= this.#ejectHorizon) this.#ejectHorizon = -Infinity; // the clock is monotonic
    }
    if (this.#streakTimed) return this.#selectWithinStreakTime(set, now);
    if (key === undefined || !this.#keyed) {
      const slot = this.#wasm.core.bal_select(this.#ctx, set.ptr, now, 0, 0);
      return slot < 0 ? undefined : this.#ids[slot];
    }
    if (set.memory.table === 0 && ++set.keyedSelects === TABLE_AFTER) this.#attachTable(set);
    const slot = this.#wasm.core.bal_select(this.#ctx, set.ptr, now, 1, fnv1a32(String(key)));
    return slot < 0 ? undefined : this.#ids[slot];
  }

  /**
   * Least connections with `tieStreakMs`: a streak that has lasted that long is marked full
   * before the core picks (so a tie goes elsewhere), and the start of a new one is noted after.
   */
  #selectWithinStreakTime(set: PreparedSet, now: number): string | undefined {
    const t = now === Infinity ? this.#now() : now;
    const i32 = this.#wasm.i32;
    const word = set.ptr >> 2;
    const before = i32[word];
    if (before >>> STREAK_SHIFT > 0 && t - set.streakAt >= this.tieStreakMs) {
      i32[word] = (before & POSITION_MASK) | (this.tieStreak << STREAK_SHIFT);
    }
    const slot = this.#wasm.core.bal_select(this.#ctx, set.ptr, now, 0, 0);
    if (this.#wasm.i32[word] >>> STREAK_SHIFT === 1) set.streakAt = t;
    return slot < 0 ? undefined : this.#ids[slot];
  }

  /**
   * Frees a candidate set's core memory now (sets are otherwise freed when garbage-collected);
   * use it for short-lived sets, e.g. one built per retry. Selecting from it afterwards throws
   * `RpcError("invalid_argument")`. Idempotent.
   */
  release(set: CandidateSet): void {
    if (!(set instanceof PreparedSet) || set.owner !== this || set.released) return;
    set.released = true;
    set.version = -1;
    set.ids = [];
    set.size = 0;
    setRegistry.unregister(set);
    freeSet(set.memory);
  }

  /** Records that a call to `id` began (active + 1). */
  start(id: string): void {
    const slot = this.#slots.get(id);
    // A plain increment of the core's `active` array: cheaper than a call into the module.
    if (slot !== undefined) this.#wasm.i32[this.#activeBase + slot]++;
  }

  /** Records that a call to `id` finished after `latencyMs` (active − 1, EWMA updated). */
  finish(id: string, latencyMs: number, ok: boolean): void {
    const slot = this.#slots.get(id);
    // The core treats a latency that is not a finite number > 0 as 0; `ok` passes as 0/1.
    if (slot !== undefined) {
      this.#wasm.core.bal_finish(this.#ctx, slot, +latencyMs, ok, this.#now());
    }
  }

  /** Skips `id` in selection until the clock reaches `untilMs` (a past time un-ejects). */
  eject(id: string, untilMs: number): void {
    const slot = this.#slots.get(id);
    if (slot === undefined) return;
    if (typeof untilMs !== "number" || Number.isNaN(untilMs)) {
      throw new RpcError("invalid_argument", `untilMs must be a number, got ${untilMs}`);
    }
    this.#wasm.core.bal_eject(this.#ctx, slot, untilMs);
    if (untilMs > this.#ejectHorizon) this.#ejectHorizon = untilMs;
  }

  /** Whether `id` is ejected now. */
  isEjected(id: string): boolean {
    const slot = this.#slots.get(id);
    if (slot === undefined) return false;
    return this.#wasm.f64[(this.#arrays.eject >> 3) + slot] > this.#now();
  }

  /** Calls to `id` in flight (0 if unknown). */
  active(id: string): number {
    const slot = this.#slots.get(id);
    if (slot === undefined) return 0;
    return this.#wasm.i32[(this.#arrays.active >> 2) + slot];
  }

  /** Peak-EWMA latency of `id` in ms, decayed to now (0 if unknown or no samples). */
  ewma(id: string): number {
    const slot = this.#slots.get(id);
    return slot === undefined ? 0 : this.#wasm.core.bal_ewma(this.#ctx, slot, this.#now());
  }

  /** Weight of `id` (0 if unknown). */
  weight(id: string): number {
    const slot = this.#slots.get(id);
    if (slot === undefined) return 0;
    return this.#wasm.f64[(this.#arrays.weight >> 3) + slot];
  }

  /** Writes the set's current slots (members still present, in requested order). */
  #resolve(set: PreparedSet): void {
    const w = this.#wasm;
    const i32 = w.i32;
    const base = set.ptr >> 2;
    const ids: string[] = [];
    for (const id of set.requested) {
      const slot = this.#slots.get(id);
      if (slot === undefined) continue;
      i32[base + 4 + ids.length] = slot;
      ids.push(id);
    }
    i32[base + 1] = ids.length;
    i32[base + 2] = 0; // cumulative weights stale
    const table = set.memory.table;
    if (table) i32.fill(-1, table >> 2, (table >> 2) + TABLE_BYTES / 4); // owners stale
    set.ids = ids;
    set.size = ids.length;
    set.version = this.#version;
  }

  /** Gives a set that serves keyed selects its bucket -> owner cache. */
  #attachTable(set: PreparedSet): void {
    const table = this.#wasm.alloc(TABLE_BYTES);
    const i32 = this.#wasm.i32;
    i32.fill(-1, table >> 2, (table >> 2) + TABLE_BYTES / 4);
    i32[(set.ptr >> 2) + 3] = table;
    set.memory.table = table;
  }

  #grow(capacity: number): void {
    const w = this.#wasm;
    const old = this.#capacity;
    const arrays = {} as Record<ArrayName, number>;
    for (const [name, size] of ARRAYS) {
      arrays[name] = w.alloc(capacity * size);
      if (old) {
        w.copy(arrays[name], this.#arrays[name], old * size);
        w.free(this.#arrays[name], old * size);
      }
    }
    this.#arrays = arrays;
    this.#capacity = capacity;
    this.#activeBase = arrays.active >> 2;
    const blocks = this.#held.blocks;
    blocks.length = 1; // the context stays
    for (const [name, size] of ARRAYS) blocks.push([arrays[name], capacity * size]);
    const a = arrays;
    w.core.bal_layout(this.#ctx, a.active, a.ewma, a.stamp, a.weight, a.eject, a.hash, a.scratch);
  }
}

function freeSet(m: SetMemory): void {
  const wasm = sharedCore();
  wasm.free(m.ptr, m.bytes);
  if (m.table) wasm.free(m.table, TABLE_BYTES);
  m.table = 0;
}

/** Frees the core memory of candidate sets that were garbage-collected without release(). */
const setRegistry = new FinalizationRegistry<SetMemory>(freeSet);
