/**
 * A Finagle-style retry budget: retries may add at most `percentCanRetry` of the calls made in
 * the last `ttlMs`, plus a floor of `minRetriesPerSec` so quiet clients can still retry. It keeps
 * a failing cluster from being hit by a retry storm.
 *
 * @module
 */

import { checkDurationMs, checkNumber, checkPlainObject, invalidOption } from "../options.ts";

/** Options of {@linkcode RetryBudget}; defaults match Finagle's `RetryBudget()`. */
export interface RetryBudgetOptions {
  /** Sliding window over which calls and retries are counted. Default 10 000 ms. */
  ttlMs?: number;
  /** Retries always allowed per second of window, on top of the percentage. Default 10. */
  minRetriesPerSec?: number;
  /** Fraction of calls that may be retried (0..1). Default 0.2. */
  percentCanRetry?: number;
  /** Clock in milliseconds. Default `performance.now`. */
  now?: () => number;
}

const BUCKETS = 10;

/**
 * Counts calls (deposits) and retries (withdrawals) in a sliding window of ten buckets.
 *
 * @example
 * ```ts
 * import { RetryBudget } from "@rpcnet/cluster";
 *
 * const budget = new RetryBudget({ minRetriesPerSec: 0 });
 * for (let i = 0; i < 10; i++) budget.deposit();
 * console.log(budget.tryWithdraw(), budget.tryWithdraw(), budget.tryWithdraw()); // true true false
 * ```
 */
export class RetryBudget {
  /** The window, in milliseconds. */
  readonly ttlMs: number;
  /** The floor of retries per second. */
  readonly minRetriesPerSec: number;
  /** The fraction of calls that may be retried. */
  readonly percentCanRetry: number;

  #now: () => number;
  #bucketMs: number;
  #deposits = new Float64Array(BUCKETS);
  #withdrawals = new Float64Array(BUCKETS);
  #epoch: number;

  /**
   * Creates an empty budget.
   *
   * @param options window, floor and percentage
   * @param optionName how the options are named in errors (`retryBudget` in `ClusterClient`)
   * @throws {RpcError} `invalid_argument` for a negative or non-finite option
   */
  constructor(options: RetryBudgetOptions = {}, optionName = "") {
    const name = (k: string) => optionName === "" ? k : `${optionName}.${k}`;
    const o = checkPlainObject(optionName === "" ? "RetryBudget options" : optionName, options);
    this.ttlMs = checkDurationMs(name("ttlMs"), o.ttlMs, 10_000, 1);
    this.minRetriesPerSec = checkNumber(name("minRetriesPerSec"), o.minRetriesPerSec, 10, 0, 1e9);
    this.percentCanRetry = checkNumber(name("percentCanRetry"), o.percentCanRetry, 0.2, 0, 1);
    if (o.now !== undefined && typeof o.now !== "function") {
      throw invalidOption(name("now"), "a function returning milliseconds", o.now);
    }
    this.#now = options.now ?? (() => performance.now());
    this.#bucketMs = this.ttlMs / BUCKETS;
    this.#epoch = Math.floor(this.#now() / this.#bucketMs);
  }

  /** Advances the window, zeroing buckets that fell out of it. */
  #roll(now: number = this.#now()): number {
    const epoch = Math.floor(now / this.#bucketMs);
    const steps = Math.min(BUCKETS, epoch - this.#epoch);
    for (let i = 1; i <= steps; i++) {
      const b = (this.#epoch + i) % BUCKETS;
      this.#deposits[b] = 0;
      this.#withdrawals[b] = 0;
    }
    if (epoch > this.#epoch) this.#epoch = epoch;
    return this.#epoch % BUCKETS;
  }

  /**
   * Records one call (not a retry).
   *
   * @param now the budget's clock, when the caller has just read it (saves a clock read)
   */
  deposit(now?: number): void {
    this.#deposits[this.#roll(now)]++;
  }

  /** Retries still allowed right now. */
  balance(): number {
    this.#roll();
    let d = 0, w = 0;
    for (let i = 0; i < BUCKETS; i++) {
      d += this.#deposits[i];
      w += this.#withdrawals[i];
    }
    const reserve = this.minRetriesPerSec * (this.ttlMs / 1000);
    return Math.floor(d * this.percentCanRetry + reserve - w);
  }

  /** Spends one retry when the budget allows it; `false` means "do not retry". */
  tryWithdraw(): boolean {
    if (this.balance() < 1) return false;
    this.#withdrawals[this.#epoch % BUCKETS]++;
    return true;
  }
}
