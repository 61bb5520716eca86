/**
 * Lifeguard's suspicion timer: a suspected member is declared dead after a timeout that starts at
 * `max` and shrinks toward `min` as independent members confirm the suspicion:
 * `timeout(c) = max(min, max − (max − min) × log(c + 1) / log(k + 1))`, where `k` is the number of
 * confirmations expected. With `k < 1` (small clusters, or Lifeguard off) the timeout is `min`.
 * {@linkcode Suspicions} runs one such timer per suspected member and, when it expires, gives the
 * member Lifeguard's last chance (see `Prober.lastChance`) before declaring it dead.
 *
 * @module
 */
import { suspicionTimeoutMs } from "./config.ts";
import type { ProtocolHost } from "./protocol_host.ts";
import type { MemberRecord } from "./member_table.ts";
import type { Prober } from "./probe.ts";
import type { Clock } from "./transport.ts";

/**
 * The suspicion timeout after `confirmations` independent confirmations, out of `k` expected.
 *
 * @example
 * ```ts
 * import { suspicionTimeout } from "@rpcnet/cluster";
 *
 * suspicionTimeout(0, 3, 2000, 12000); // 12000: nobody else agrees yet
 * suspicionTimeout(1, 3, 2000, 12000); // 7000: one of the three expected agrees
 * suspicionTimeout(3, 3, 2000, 12000); // 2000: everyone expected agrees
 * ```
 */
export function suspicionTimeout(
  confirmations: number,
  k: number,
  minMs: number,
  maxMs: number,
): number {
  if (k < 1) return minMs;
  const frac = Math.log(confirmations + 1) / Math.log(k + 1);
  const raw = maxMs - frac * (maxMs - minMs);
  return Math.max(minMs, Math.floor(raw));
}

/**
 * One running suspicion: a timer that fires `onTimeout` unless cancelled, rescheduled earlier
 * with each new confirmation from a distinct member.
 */
export class Suspicion {
  readonly #clock: Clock;
  readonly #k: number;
  readonly #min: number;
  readonly #max: number;
  readonly #start: number;
  readonly #onTimeout: () => void;
  /** Members whose suspicion counted (the first suspecter included); at most k + 1 kept. */
  readonly #from: string[];
  #timer: number | undefined;
  #confirmations = 0;

  /**
   * Starts the timer.
   *
   * @param from the member that raised the suspicion (its later messages are not confirmations)
   * @param k confirmations expected (0 disables shrinking)
   */
  constructor(
    clock: Clock,
    from: string,
    k: number,
    minMs: number,
    maxMs: number,
    onTimeout: () => void,
  ) {
    this.#clock = clock;
    this.#k = k;
    this.#min = minMs;
    this.#max = maxMs;
    this.#from = [from];
    this.#onTimeout = onTimeout;
    this.#start = clock.now();
    const timeout = suspicionTimeout(0, k, minMs, maxMs);
    this.#timer = clock.setTimeout(() => this.#fire(), timeout);
  }

  /** Independent confirmations so far. */
  get confirmations(): number {
    return this.#confirmations;
  }

  /** Current total timeout (from the start of the suspicion). */
  get timeoutMs(): number {
    return suspicionTimeout(this.#confirmations, this.#k, this.#min, this.#max);
  }

  /**
   * Counts a suspicion from `from`. Returns true when it is a new independent confirmation (the
   * caller re-gossips it then), false for duplicates or once `k` confirmations are in.
   */
  confirm(from: string): boolean {
    if (this.#timer === undefined || this.#confirmations >= this.#k) return false;
    if (this.#from.includes(from)) return false;
    this.#from.push(from);
    this.#confirmations++;
    const remaining = this.#start + this.timeoutMs - this.#clock.now();
    this.#clock.clearTimeout(this.#timer);
    if (remaining <= 0) {
      // Fire asynchronously so callers finish their bookkeeping first.
      this.#timer = this.#clock.setTimeout(() => this.#fire(), 0);
    } else this.#timer = this.#clock.setTimeout(() => this.#fire(), remaining);
    return true;
  }

  /** Stops the timer (refuted, or the member is gone). */
  cancel(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#onTimeout();
  }
}

/** The running suspicions of one node, one per suspected member. */
export class Suspicions {
  readonly #host: ProtocolHost;
  readonly #prober: Prober;
  readonly #running = new Map<string, Suspicion>();

  /** @param host protocol host; @param prober gives the last chance before a death */
  constructor(host: ProtocolHost, prober: Prober) {
    this.#host = host;
    this.#prober = prober;
  }

  /**
   * Starts (or restarts) the suspicion of `rec` raised by `from`; `verified` after its
   * last-chance ping was answered, so the next expiry declares it dead at once.
   */
  start(rec: MemberRecord, from: string, verified = false): void {
    this.cancel(rec.id);
    const host = this.#host;
    const c = host.config;
    const n = host.table.liveCount;
    // Lifeguard: at most the members that could confirm (all but us and the suspect).
    const k = c.lifeguard ? Math.max(0, Math.min(c.suspicionConfirmations, n - 2)) : 0;
    const min = suspicionTimeoutMs(c.suspicionMult, n, c.probeIntervalMs);
    const max = c.lifeguard ? min * c.suspicionMaxTimeoutMult : min;
    const id = rec.id;
    const s = new Suspicion(host.clock, from, k, min, max, () => {
      if (this.#running.get(id) === s) this.#running.delete(id);
      const r = host.table.get(id);
      if (r === undefined || r.state !== "suspect" || !host.running) return;
      const incarnation = r.incarnation;
      const declare = () => {
        const now = host.table.get(id);
        if (now === undefined || now.state !== "suspect" || now.incarnation !== incarnation) return;
        if (!host.running) return;
        host.handleDead({ type: "dead", node: id, incarnation, from: host.table.localId });
      };
      if (!c.lifeguard || verified) return declare();
      this.#prober.lastChance(r, () => {
        const now = host.table.get(id);
        if (now !== undefined && now.state === "suspect" && host.running) {
          this.start(now, host.table.localId, true);
        }
      }, declare);
    });
    this.#running.set(id, s);
  }

  /** Counts `from`'s suspicion of `id`: true when it is a new independent confirmation. */
  confirm(id: string, from: string): boolean {
    const s = this.#running.get(id);
    return s !== undefined && s.confirm(from);
  }

  /** Ends the suspicion of `id` (refuted, or the member is gone). */
  cancel(id: string): void {
    const s = this.#running.get(id);
    if (s !== undefined) {
      s.cancel();
      this.#running.delete(id);
    }
  }

  /** Ends every suspicion (shutdown). */
  clear(): void {
    for (const s of this.#running.values()) s.cancel();
    this.#running.clear();
  }
}
