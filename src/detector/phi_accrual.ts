/**
 * Phi accrual failure detection over the wasm core: the facade maps member ids to slots; the
 * statistics live in the core's linear memory, one struct-of-arrays slot per member.
 *
 * @module
 */
import { RpcError } from "../errors.ts";
import { checkInt } from "../options.ts";
import {
  type Block,
  blockRegistry,
  CONTEXT_BYTES,
  type CoreInstance,
  sharedCore,
} from "../../wasm/loader.ts";

/** Options for {@linkcode PhiAccrualDetector}; every field has a documented default. */
export interface PhiAccrualOptions {
  /** phi at or above which a member is suspected. Default 8 (Akka's default). */
  threshold?: number;
  /** Inter-arrival samples kept per member (sliding window), 1 to 1000. Default 1000. */
  maxSampleSize?: number;
  /** Lower bound on the standard deviation used in phi, in ms (> 0). Default 100. */
  minStdDeviationMs?: number;
  /** Extra delay tolerated before phi starts rising (added to the mean), in ms (>= 0). Default 0. */
  acceptableHeartbeatPauseMs?: number;
  /**
   * Expected interval before any sample exists, in ms (> 0): a member's history starts with two
   * intervals at this estimate -/+ 25 % (mean = estimate, std = estimate / 4). Default 1000.
   */
  firstHeartbeatEstimateMs?: number;
  /** Initial number of member slots; grows by doubling as needed. Default 64. */
  capacity?: number;
}

/** Per-member overrides for {@linkcode PhiAccrualDetector.configure}. */
export interface PhiMemberOptions {
  /** Lower bound on this member's standard deviation, in ms (> 0). */
  minStdDeviationMs?: number;
  /** Extra delay tolerated for this member, in ms (>= 0). */
  acceptableHeartbeatPauseMs?: number;
}

/** The estimate phi uses for one member: mean (pause included) and standard deviation, in ms. */
export interface PhiEstimate {
  /** Mean inter-arrival time plus the acceptable pause, in ms. */
  meanMs: number;
  /** max(sample standard deviation, minimum standard deviation), in ms. */
  stdDeviationMs: number;
  /** Samples currently in the window (including the two seeded at the first heartbeat). */
  samples: number;
}

/** The defaults of {@linkcode PhiAccrualOptions}. */
export const PHI_ACCRUAL_DEFAULTS: Readonly<Required<PhiAccrualOptions>> = Object.freeze({
  threshold: 8,
  maxSampleSize: 1000,
  minStdDeviationMs: 100,
  acceptableHeartbeatPauseMs: 0,
  firstHeartbeatEstimateMs: 1000,
  capacity: 64,
});

/** The most samples a member's window may hold. */
export const MAX_SAMPLE_SIZE = 1000;

// Slot arrays in the core, in det_layout order after the ring: [name, bytes per element].
const ARRAYS = [
  ["count", 4],
  ["head", 4],
  ["sum", 8],
  ["sumSq", 8],
  ["last", 8],
  ["mean", 8],
  ["std", 8],
  ["minStd", 8],
  ["pause", 8],
  ["out", 8],
  ["idx", 4],
] as const;
type ArrayName = (typeof ARRAYS)[number][0];

/**
 * Phi accrual failure detector (Hayashibara et al. 2004, with Akka's normal-distribution model)
 * for many members at once, computed in WebAssembly.
 *
 * For each member it keeps the last `maxSampleSize` heartbeat inter-arrival times and, from their
 * mean μ and standard deviation σ:
 *
 * ```
 * μ' = μ + acceptableHeartbeatPauseMs
 * σ' = max(σ, minStdDeviationMs)
 * z  = (now - lastArrival - μ') / σ'
 * phi = -log10(Q(z)),  Q(z) = P(X > z) for X ~ N(0, 1)
 * ```
 *
 * Q is evaluated in log space (Hart's rational approximation times exp(-z²/2) below z = 7.07, a
 * continued fraction above), so phi is accurate to double precision and keeps growing without
 * bound: about 23 at z = 10 and 350 at z = 40, instead of saturating where `1 - cdf` rounds to 0.
 * phi = 1 means a 10 % chance the member is still alive and merely late, 8 (the default
 * threshold) about 1e-8. As in Akka, an arrival is added to the history only if phi was below the
 * threshold when it came (the first heartbeat after an outage does not skew the statistics).
 *
 * Defaults: threshold 8, window 1000 samples, min std deviation 100 ms, acceptable pause 0,
 * first-heartbeat estimate 1000 ms. Times are passed in (ms, any monotonic origin), so virtual
 * clocks work. Memory is about `8 × maxSampleSize` bytes per member slot, in the process-wide wasm
 * core memory that all detectors and balancers share (one instance, at most 2 GiB; past it
 * `heartbeat` throws `RpcError("resource_exhausted")`). A detector's memory is freed when it is
 * garbage-collected.
 *
 * @example
 * ```ts
 * import { PhiAccrualDetector } from "@rpcnet/cluster";
 *
 * const detector = new PhiAccrualDetector({ threshold: 8 });
 * for (let t = 0; t <= 10_000; t += 1000) detector.heartbeat("node-a", t);
 * console.log(detector.phi("node-a", 10_500) < 1); // true: on time
 * console.log(detector.suspects(25_000)); // ["node-a"]: 15 s of silence
 * ```
 */
export class PhiAccrualDetector {
  /** Default suspicion threshold for {@linkcode PhiAccrualDetector.suspects} and `isAvailable`. */
  readonly threshold: number;
  /** Samples kept per member. */
  readonly maxSampleSize: number;
  /** Default minimum standard deviation (ms) for new members. */
  readonly minStdDeviationMs: number;
  /** Default acceptable heartbeat pause (ms) for new members. */
  readonly acceptableHeartbeatPauseMs: number;
  /** First-heartbeat interval estimate (ms). */
  readonly firstHeartbeatEstimateMs: number;

  #wasm: CoreInstance;
  #ctx: number;
  #held: { blocks: Block[] };
  #capacity = 0;
  #ring = 0;
  #arrays = {} as Record<ArrayName, number>;
  #slots = new Map<string, number>();
  #ids: (string | undefined)[] = [];
  #freeSlots: number[] = [];
  #highWater = 0;

  /**
   * Creates a detector with no members; members appear at their first heartbeat.
   *
   * @param options thresholds and window; see {@linkcode PhiAccrualOptions} for defaults
   * @throws {RpcError} `invalid_argument` when an option is out of range
   */
  constructor(options: PhiAccrualOptions = {}) {
    const o = { ...PHI_ACCRUAL_DEFAULTS, ...stripUndefined(options) };
    this.threshold = checkNumber("threshold", o.threshold, 0, false);
    this.maxSampleSize = checkInt(
      "maxSampleSize",
      o.maxSampleSize,
      PHI_ACCRUAL_DEFAULTS.maxSampleSize,
      1,
      MAX_SAMPLE_SIZE,
    );
    this.minStdDeviationMs = checkNumber("minStdDeviationMs", o.minStdDeviationMs, 0, false);
    this.acceptableHeartbeatPauseMs = checkNumber(
      "acceptableHeartbeatPauseMs",
      o.acceptableHeartbeatPauseMs,
      0,
      true,
    );
    this.firstHeartbeatEstimateMs = checkNumber(
      "firstHeartbeatEstimateMs",
      o.firstHeartbeatEstimateMs,
      0,
      false,
    );
    const capacity = checkInt("capacity", o.capacity, PHI_ACCRUAL_DEFAULTS.capacity, 1, 1 << 24);
    this.#wasm = sharedCore();
    this.#ctx = this.#wasm.alloc(CONTEXT_BYTES);
    this.#held = { blocks: [[this.#ctx, CONTEXT_BYTES]] };
    blockRegistry.register(this, this.#held);
    this.#grow(capacity);
  }

  /** Bytes of the shared WebAssembly memory this detector holds (its arrays and context). */
  get memoryBytes(): number {
    return this.#held.blocks.reduce((sum, [, bytes]) => sum + bytes, 0);
  }

  /** Number of monitored members. */
  get size(): number {
    return this.#slots.size;
  }

  /** Whether `id` is monitored (has had a heartbeat and was not removed). */
  has(id: string): boolean {
    return this.#slots.has(id);
  }

  /** The monitored member ids. */
  ids(): string[] {
    return [...this.#slots.keys()];
  }

  /**
   * Records a heartbeat (or ack) from `id` arriving at `nowMs`; the first call starts monitoring
   * it. An arrival earlier than the previous one is ignored.
   * @throws {RpcError} `invalid_argument` for a non-string id or non-finite time
   */
  heartbeat(id: string, nowMs: number): void {
    checkTime(nowMs);
    const slot = this.#slots.get(id);
    if (slot !== undefined) {
      this.#wasm.core.det_heartbeat(this.#ctx, slot, nowMs, this.threshold);
      return;
    }
    checkId(id);
    const s = this.#allocSlot(id);
    this.#wasm.core.det_open(
      this.#ctx,
      s,
      nowMs,
      this.minStdDeviationMs,
      this.acceptableHeartbeatPauseMs,
    );
  }

  /** phi of `id` at `nowMs`; 0 for a member that is not monitored. */
  phi(id: string, nowMs: number): number {
    checkTime(nowMs);
    const slot = this.#slots.get(id);
    return slot === undefined ? 0 : this.#wasm.core.det_phi(this.#ctx, slot, nowMs);
  }

  /** phi of every monitored member at `nowMs`, computed in one batched wasm call. */
  phiAll(nowMs: number): Map<string, number> {
    checkTime(nowMs);
    const w = this.#wasm;
    w.core.det_phi_all(this.#ctx, nowMs, this.#highWater);
    const f64 = w.f64;
    const base = this.#arrays.out >> 3;
    const out = new Map<string, number>();
    const ids = this.#ids;
    for (let slot = 0; slot < this.#highWater; slot++) {
      const id = ids[slot];
      if (id !== undefined) out.set(id, f64[base + slot]);
    }
    return out;
  }

  /** Ids whose phi at `nowMs` is at least `threshold` (default: the detector's), in one wasm call. */
  suspects(nowMs: number, threshold: number = this.threshold): string[] {
    checkTime(nowMs);
    if (typeof threshold !== "number" || Number.isNaN(threshold)) {
      throw new RpcError("invalid_argument", `threshold must be a number, got ${threshold}`);
    }
    const w = this.#wasm;
    const k = w.core.det_suspects(this.#ctx, nowMs, this.#highWater, threshold);
    const i32 = w.i32;
    const base = this.#arrays.idx >> 2;
    const ids: string[] = new Array(k);
    for (let i = 0; i < k; i++) ids[i] = this.#ids[i32[base + i]]!;
    return ids;
  }

  /** Whether phi of `id` at `nowMs` is below the threshold (true for unmonitored members). */
  isAvailable(id: string, nowMs: number): boolean {
    return this.phi(id, nowMs) < this.threshold;
  }

  /** Stops monitoring `id` (its slot is reused); no-op if unknown. */
  remove(id: string): void {
    const slot = this.#slots.get(id);
    if (slot === undefined) return;
    this.#wasm.core.det_close(this.#ctx, slot);
    this.#slots.delete(id);
    this.#ids[slot] = undefined;
    this.#freeSlots.push(slot);
  }

  /**
   * Overrides the minimum standard deviation and/or acceptable pause for one monitored member.
   * @throws {RpcError} `not_found` if `id` is not monitored, `invalid_argument` for bad values
   */
  configure(id: string, options: PhiMemberOptions): void {
    const slot = this.#slots.get(id);
    if (slot === undefined) throw new RpcError("not_found", `member '${id}' is not monitored`);
    const w = this.#wasm;
    const minStd = options.minStdDeviationMs === undefined
      ? w.f64[(this.#arrays.minStd >> 3) + slot]
      : checkNumber("minStdDeviationMs", options.minStdDeviationMs, 0, false);
    const pause = options.acceptableHeartbeatPauseMs === undefined
      ? w.f64[(this.#arrays.pause >> 3) + slot]
      : checkNumber("acceptableHeartbeatPauseMs", options.acceptableHeartbeatPauseMs, 0, true);
    w.core.det_configure(this.#ctx, slot, minStd, pause);
  }

  /** The mean and standard deviation phi currently uses for `id`, or undefined if unmonitored. */
  estimate(id: string): PhiEstimate | undefined {
    const slot = this.#slots.get(id);
    if (slot === undefined) return undefined;
    const w = this.#wasm;
    return {
      meanMs: w.core.det_estimate(this.#ctx, slot, 0),
      stdDeviationMs: w.core.det_estimate(this.#ctx, slot, 1),
      samples: w.i32[(this.#arrays.count >> 2) + slot],
    };
  }

  #allocSlot(id: string): number {
    let slot = this.#freeSlots.pop();
    if (slot === undefined) {
      if (this.#highWater === this.#capacity) this.#grow(this.#capacity * 2);
      slot = this.#highWater++;
    }
    this.#slots.set(id, slot);
    this.#ids[slot] = id;
    return slot;
  }

  /** (Re)allocates every slot array for `capacity` slots, keeping existing slots' state. */
  #grow(capacity: number): void {
    const w = this.#wasm;
    const old = this.#capacity;
    const window = this.maxSampleSize;
    const ring = w.alloc(capacity * window * 8);
    if (old) w.copy(ring, this.#ring, old * window * 8);
    const arrays = {} as Record<ArrayName, number>;
    for (const [name, size] of ARRAYS) {
      arrays[name] = w.alloc(capacity * size);
      if (old) w.copy(arrays[name], this.#arrays[name], old * size);
    }
    if (old) {
      w.free(this.#ring, old * window * 8);
      for (const [name, size] of ARRAYS) w.free(this.#arrays[name], old * size);
    }
    const blocks = this.#held.blocks;
    blocks.length = 1; // the context stays
    blocks.push([ring, capacity * window * 8]);
    for (const [name, size] of ARRAYS) blocks.push([arrays[name], capacity * size]);
    this.#ring = ring;
    this.#arrays = arrays;
    this.#capacity = capacity;
    const a = arrays;
    w.core.det_layout(
      this.#ctx,
      window,
      this.firstHeartbeatEstimateMs,
      ring,
      a.count,
      a.head,
      a.sum,
      a.sumSq,
      a.last,
      a.mean,
      a.std,
      a.minStd,
      a.pause,
      a.out,
      a.idx,
    );
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkTime(nowMs: number): void {
  if (typeof nowMs !== "number" || !Number.isFinite(nowMs)) {
    throw new RpcError("invalid_argument", `time must be a finite number of ms, got ${nowMs}`);
  }
}

function checkId(id: string): void {
  if (typeof id !== "string") {
    throw new RpcError("invalid_argument", `member id must be a string, got ${typeof id}`);
  }
}

function checkNumber(name: string, v: number, min: number, inclusive: boolean): number {
  if (typeof v !== "number" || !Number.isFinite(v) || (inclusive ? v < min : v <= min)) {
    throw new RpcError(
      "invalid_argument",
      `${name} must be a finite number ${inclusive ? ">=" : ">"} ${min}, got ${v}`,
    );
  }
  return v;
}
