/**
 * Outlier ejection: a worker that fails several calls in a row is taken out of selection for a
 * back-off that doubles with each ejection, independent of (and faster than) gossip. As in Envoy,
 * at most a fraction of the pool is ejected at once, so a sick client cannot eject everything.
 *
 * @module
 */

import { RpcError } from "../errors.ts";

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
   * @throws {RpcError} `invalid_argument` for nonsensical options
   */
  constructor(target: EjectionTarget, now: () => number, options: OutlierOptions = {}) {
    this.consecutiveFailures = options.consecutiveFailures ?? 5;
    this.baseEjectionMs = options.baseEjectionMs ?? 1000;
    this.maxEjectionMs = options.maxEjectionMs ?? Math.max(30_000, this.baseEjectionMs);
    this.maxEjectionPercent = options.maxEjectionPercent ?? 50;
    if (!Number.isInteger(this.consecutiveFailures) || this.consecutiveFailures < 1) {
      throw new RpcError(
        "invalid_argument",
        `outlier consecutiveFailures must be an integer >= 1, got ${this.consecutiveFailures}`,
      );
    }
    if (!(this.baseEjectionMs > 0) || !(this.maxEjectionMs >= this.baseEjectionMs)) {
      throw new RpcError(
        "invalid_argument",
        `outlier ejection must satisfy 0 < baseEjectionMs <= maxEjectionMs, got ` +
          `${this.baseEjectionMs} and ${this.maxEjectionMs}`,
      );
    }
    if (!(this.maxEjectionPercent >= 0 && this.maxEjectionPercent <= 100)) {
      throw new RpcError(
        "invalid_argument",
        `outlier maxEjectionPercent must be in [0, 100], got ${this.maxEjectionPercent}`,
      );
    }
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
