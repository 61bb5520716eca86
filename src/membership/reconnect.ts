/**
 * Reconnecting to failed members (serf's reconnect), so partitions heal however long they last.
 *
 * A member declared dead is kept on a reconnect list, apart from its gossip tombstone (which is
 * reaped after `reapIntervalMs` and then forgotten), for `reconnectTimeoutMs` (24 h by default).
 * Every `reconnectIntervalMs` the node tries one random entry with a push-pull. Every node of
 * each side of a partition holds the other side on its list, so once the network is back the
 * first attempt on either side succeeds: the sync carries each side's dead verdicts to the
 * other, whose members refute them, and within a few gossip rounds both views are whole again.
 * A member that comes back alive or leaves gracefully is taken off the list. The list is capped
 * (`maxMembers`), dropping its oldest entries.
 *
 * @module
 */

/** Counters of the reconnect list. */
export interface ReconnectCounters {
  /** Reconnect exchanges started with failed members. */
  reconnectAttempts: number;
  /** Reconnect exchanges that reached the failed member. */
  reconnects: number;
  /** Failed members dropped from the list after `reconnectTimeoutMs` or past its cap. */
  reconnectsExpired: number;
  /** Re-joins of the seeds made while the view was partitioned (or this node alone). */
  seedRejoins: number;
}

interface FailedMember {
  readonly addr: string;
  readonly since: number;
}

/** The failed members to try again, oldest first. */
export class ReconnectList {
  readonly #failed = new Map<string, FailedMember>();
  readonly #max: number;
  /** Counters. */
  readonly counters: ReconnectCounters = {
    reconnectAttempts: 0,
    reconnects: 0,
    reconnectsExpired: 0,
    seedRejoins: 0,
  };
  #inFlight = 0;

  /** @param max most entries kept; the oldest are dropped past it */
  constructor(max: number) {
    this.#max = max;
  }

  /** Failed members on the list. */
  get size(): number {
    return this.#failed.size;
  }

  /** `id` was declared dead at gossip address `addr`: keep it to try again. */
  failed(id: string, addr: string, now: number): void {
    this.#failed.delete(id);
    this.#failed.set(id, { addr, since: now });
    while (this.#failed.size > this.#max) {
      this.#failed.delete(this.#failed.keys().next().value!);
      this.counters.reconnectsExpired++;
    }
  }

  /** `id` is alive again, or left gracefully: nothing to reconnect to. */
  forget(id: string): void {
    this.#failed.delete(id);
  }

  /**
   * Drops entries older than `timeoutMs` and picks one of the rest at random (its gossip
   * address), or `undefined` when the list is empty.
   */
  pick(now: number, timeoutMs: number, random: () => number): string | undefined {
    for (const [id, f] of this.#failed) {
      if (now - f.since < timeoutMs) break; // oldest first: the rest are younger
      this.#failed.delete(id);
      this.counters.reconnectsExpired++;
    }
    const n = this.#failed.size;
    if (n === 0) return undefined;
    let i = Math.floor(random() * n);
    for (const f of this.#failed.values()) {
      if (i-- === 0) return f.addr;
    }
    return undefined;
  }

  /**
   * One reconnect round: a push-pull (`exchange`) with one failed member, then, when `rejoin`
   * is given, a re-join of the seeds while `running()` still holds (partitions then heal
   * however long they lasted). An attempt to a host still cut off waits out its whole timeout
   * (dropped SYNs): two rounds may overlap, so the round after the network returns is never
   * skipped behind a stale one.
   */
  tick(
    now: number,
    timeoutMs: number,
    random: () => number,
    exchange: (addr: string) => Promise<unknown>,
    rejoin: (() => Promise<unknown>) | undefined,
    running: () => boolean,
  ): void {
    if (this.#inFlight >= 2) return;
    const addr = this.pick(now, timeoutMs, random);
    if (addr === undefined && rejoin === undefined) return;
    this.#inFlight++;
    (async () => {
      if (addr !== undefined) {
        this.counters.reconnectAttempts++;
        try {
          await exchange(addr);
          this.counters.reconnects++;
        } catch {
          // still unreachable: tried again later
        }
      }
      if (rejoin !== undefined && running()) {
        this.counters.seedRejoins++;
        await rejoin();
      }
    })().catch(() => {}).finally(() => {
      this.#inFlight--;
    });
  }
}
