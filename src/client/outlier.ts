/**
 * Outlier ejection: a worker that fails several calls in a row is taken out of selection for a
 * back-off that doubles with each ejection, independent of (and faster than) gossip. As in Envoy,
 * at most a fraction of the pool is ejected at once, so a sick client cannot eject everything.
 *
 * @module
 */

import {
  checkDurationMs,
  checkInt,
  checkNumber,
  checkPlainObject,
  invalidOption,
} from "../options.ts";

/** Options of {@linkcode OutlierDetector}. */
export interface OutlierOptions {
  /** Consecutive failed calls that eject a worker. Default 5. */
  consecutiveFailures?: number;
  /** First ejection's length. Default 1000 ms. */
  baseEjectionMs?: number;
  /** Longest ejection. Default 30 000 ms (or `baseEjectionMs` when larger). */
  maxEjectionMs?: number;
  /** Most of the pool (percent) ejected at once; at least one worker may always be. Default 50. */
  maxEjectionPercent?: number;
}

/** Where ejections are applied: `Balancer.eject(id, untilMs)` and the same clock. */
export interface EjectionTarget {
  /** Skips `id` in selection until `untilMs`. */
  eject(id: string, untilMs: number): void;
}

interface Health {
  consecutive: number;
  ejections: number;
  ejectedUntil: number;
}

/**
 * Tracks consecutive failures per worker and ejects outliers through an {@linkcode EjectionTarget}.
 *
 * @example
 * ```ts
 * import { OutlierDetector } from "@rpcnet/cluster";
 *
 * const ejected: string[] = [];
 * const outliers = new OutlierDetector({ eject: (id) => ejected.push(id) }, () => 0, {
 *   consecutiveFailures: 2,
 * });
 * outliers.failure("w1", 3);
 * outliers.failure("w1", 3);
 * console.log(ejected); // ["w1"]
 * ```
 */
export class OutlierDetector {
  /** Consecutive failures that eject. */
  readonly consecutiveFailures: number;
  /** First ejection's length, ms. */
  readonly baseEjectionMs: number;
  /** Longest ejection, ms. */
  readonly maxEjectionMs: number;
  /** Most of the pool ejected at once, percent. */
  readonly maxEjectionPercent: number;

  #target: EjectionTarget;
  #now: () => number;
  #health = new Map<string, Health>();
  #totalEjections = 0;

  /**
   * Creates a detector applying ejections to `target`.
   *
   * @param target applies ejections (the balancer)
   * @param now the target's clock, in milliseconds
   * @param options thresholds and back-off
   * @param optionName how the options are named in errors (`outlier` in `ClusterClient`)
   * @throws {RpcError} `invalid_argument` for nonsensical options
   */
  constructor(
    target: EjectionTarget,
    now: () => number,
    options: OutlierOptions = {},
    optionName = "outlier",
  ) {
    const o = checkPlainObject(optionName, options);
    const name = (k: string) => `${optionName}.${k}`;
    this.consecutiveFailures = checkInt(
      name("consecutiveFailures"),
      o.consecutiveFailures,
      5,
      1,
      1_000_000,
    );
    this.baseEjectionMs = checkDurationMs(name("baseEjectionMs"), o.baseEjectionMs, 1000, 1);
    this.maxEjectionMs = checkDurationMs(
      name("maxEjectionMs"),
      o.maxEjectionMs,
      Math.max(30_000, this.baseEjectionMs),
      1,
    );
    if (this.maxEjectionMs < this.baseEjectionMs) {
      throw invalidOption(
        name("maxEjectionMs"),
        `>= ${name("baseEjectionMs")} (${this.baseEjectionMs})`,
        this.maxEjectionMs,
      );
    }
    this.maxEjectionPercent = checkNumber(
      name("maxEjectionPercent"),
      o.maxEjectionPercent,
      50,
      0,
      100,
    );
    this.#target = target;
    this.#now = now;
  }

  /** Ejections performed since creation. */
  get totalEjections(): number {
    return this.#totalEjections;
  }

  /** A call to `id` succeeded: its failure streak ends; a long-healthy worker's back-off decays. */
  success(id: string): void {
    const h = this.#health.get(id);
    if (!h) return;
    h.consecutive = 0;
    if (h.ejections > 0 && this.#now() > h.ejectedUntil + this.#ejectionMs(h.ejections)) {
      h.ejections--;
    }
    if (h.ejections === 0) this.#health.delete(id);
  }

  /**
   * A call to `id` failed in a way that says the worker is unhealthy.
   *
   * @param poolSize how many workers the selection is among (bounds concurrent ejections)
   * @returns the ejection's end (target clock) when this failure ejected the worker
   */
  failure(id: string, poolSize: number): number | undefined {
    let h = this.#health.get(id);
    if (!h) this.#health.set(id, h = { consecutive: 0, ejections: 0, ejectedUntil: 0 });
    h.consecutive++;
    const now = this.#now();
    if (h.consecutive < this.consecutiveFailures || h.ejectedUntil > now) return undefined;
    const allowed = Math.max(1, Math.floor(poolSize * this.maxEjectionPercent / 100));
    if (this.ejectedCount() >= allowed) return undefined;
    h.ejections++;
    h.consecutive = 0;
    h.ejectedUntil = now + this.#ejectionMs(h.ejections);
    this.#totalEjections++;
    this.#target.eject(id, h.ejectedUntil);
    return h.ejectedUntil;
  }

  /**
   * Ejects `id` at once, without waiting for a streak: the failure is certain to repeat (the
   * worker rejected this client's secret). Bounded by `maxEjectionPercent` like every ejection.
   *
   * @param poolSize how many workers the selection is among
   * @returns the ejection's end (target clock), or `undefined` when not ejected
   */
  ejectNow(id: string, poolSize: number): number | undefined {
    let h = this.#health.get(id);
    if (!h) this.#health.set(id, h = { consecutive: 0, ejections: 0, ejectedUntil: 0 });
    h.consecutive = Math.max(h.consecutive, this.consecutiveFailures);
    return this.failure(id, poolSize);
  }

  /** Whether `id` is currently ejected. */
  isEjected(id: string): boolean {
    const h = this.#health.get(id);
    return h !== undefined && h.ejectedUntil > this.#now();
  }

  /** Workers ejected right now. */
  ejectedCount(): number {
    const now = this.#now();
    let n = 0;
    for (const h of this.#health.values()) if (h.ejectedUntil > now) n++;
    return n;
  }

  /** Forgets a worker (it left the cluster). */
  forget(id: string): void {
    this.#health.delete(id);
  }

  #ejectionMs(ejections: number): number {
    return Math.min(this.maxEjectionMs, this.baseEjectionMs * 2 ** (ejections - 1));
  }
}
