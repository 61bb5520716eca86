/**
 * The piggyback broadcast queue (memberlist's TransmitLimitedQueue).
 *
 * Each broadcast is sent at most `mult × ceil(log10(N+1))` times; the least-sent go first (newest
 * first among equals), so fresh news spreads fastest. A newer broadcast about the same member
 * invalidates the older one. Entries live in one doubly-linked list per transmit count, so taking,
 * re-filing and invalidating are O(1), and packing a datagram touches only what it sends.
 *
 * @module
 */
import { retransmitLimit } from "./config.ts";

/** One queued broadcast. */
class Entry {
  key: string;
  bytes: Uint8Array;
  transmits = 0;
  prev: Entry | undefined = undefined;
  next: Entry | undefined = undefined;
  /** Called once when the entry leaves the queue (sent out or invalidated). */
  onDone: ((sent: boolean) => void) | undefined;

  constructor(key: string, bytes: Uint8Array, onDone: ((sent: boolean) => void) | undefined) {
    this.key = key;
    this.bytes = bytes;
    this.onDone = onDone;
  }
}

/**
 * A transmit-limited broadcast queue.
 *
 * @example
 * ```ts
 * import { BroadcastQueue } from "./broadcast_queue.ts";
 *
 * const q = new BroadcastQueue(4, () => 10); // retransmit mult 4 in a 10-node cluster
 * q.queue("node-a", new Uint8Array([1, 2, 3])); // a later broadcast keyed node-a replaces it
 * const parts: Uint8Array[] = [];
 * // Fill up to 1400 bytes, counting 3 bytes of framing per broadcast: used = 6, one part.
 * const used = q.take(1400, 3, (bytes) => parts.push(bytes));
 * ```
 */
export class BroadcastQueue {
  readonly #mult: number;
  readonly #numNodes: () => number;
  readonly #maxDepth: number;
  /** buckets[t] = head of the list of entries sent t times. */
  #heads: (Entry | undefined)[] = [];
  #tails: (Entry | undefined)[] = [];
  readonly #byKey = new Map<string, Entry>();
  #anonymous = 0;
  #size = 0;
  /** Broadcasts dropped because the queue was full. */
  pruned = 0;

  /**
   * @param retransmitMult the `mult` of the retransmit limit
   * @param numNodes current cluster size N (read at every take)
   * @param maxDepth most entries kept; past it the most-sent (then oldest) are dropped
   */
  constructor(retransmitMult: number, numNodes: () => number, maxDepth = 4096) {
    this.#mult = retransmitMult;
    this.#numNodes = numNodes;
    this.#maxDepth = maxDepth;
  }

  /** Number of queued broadcasts. */
  get size(): number {
    return this.#size;
  }

  /** Current retransmit limit. */
  get limit(): number {
    return Math.max(1, retransmitLimit(this.#mult, this.#numNodes()));
  }

  /**
   * Queues `bytes` (one encoded message). A `key` (member id) replaces any queued broadcast with
   * the same key; `undefined` keys never collide. `onDone(sent)` is called when the entry leaves.
   */
  queue(key: string | undefined, bytes: Uint8Array, onDone?: (sent: boolean) => void): void {
    const k = key ?? `\u0000${this.#anonymous++}`;
    const old = this.#byKey.get(k);
    if (old !== undefined) this.#remove(old, false);
    const e = new Entry(k, bytes, onDone);
    this.#byKey.set(k, e);
    this.#pushFront(e);
    while (this.#size > this.#maxDepth) this.#pruneOne();
  }

  /** Whether a broadcast with `key` is queued. */
  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  /** Drops everything. */
  clear(): void {
    for (const e of [...this.#byKey.values()]) this.#remove(e, false);
  }

  /**
   * Takes broadcasts fitting in `budget` bytes, least-sent first, counting `overhead` bytes per
   * broadcast beyond its own length, and files each one a transmit further (removing it at the
   * limit). Calls `emit` with each taken broadcast; returns the bytes used.
   */
  take(budget: number, overhead: number, emit: (bytes: Uint8Array) => void): number {
    if (this.#size === 0 || budget <= 0) return 0;
    const limit = this.limit;
    let used = 0;
    const moved: Entry[] = [];
    let misses = 0;
    for (let t = 0; t < this.#heads.length; t++) {
      let e = this.#heads[t];
      while (e !== undefined) {
        const next = e.next;
        if (e.transmits >= limit) {
          this.#remove(e, true);
        } else {
          const cost = e.bytes.length + overhead;
          if (used + cost <= budget) {
            used += cost;
            emit(e.bytes);
            this.#unlink(e);
            e.transmits++;
            moved.push(e);
          } else if (++misses > 32) {
            break;
          }
        }
        if (budget - used < overhead + 8) break;
        e = next;
      }
      if (budget - used < overhead + 8 || misses > 32) break;
    }
    // Re-file in reverse so entries keep their relative order within the next bucket.
    for (let i = moved.length - 1; i >= 0; i--) {
      const e = moved[i];
      if (e.transmits >= limit) {
        this.#byKey.delete(e.key);
        e.onDone?.(true);
      } else this.#pushFront(e);
    }
    return used;
  }

  #pushFront(e: Entry): void {
    const t = e.transmits;
    while (this.#heads.length <= t) {
      this.#heads.push(undefined);
      this.#tails.push(undefined);
    }
    e.prev = undefined;
    e.next = this.#heads[t];
    if (e.next) e.next.prev = e;
    else this.#tails[t] = e;
    this.#heads[t] = e;
    this.#size++;
  }

  #unlink(e: Entry): void {
    const t = e.transmits;
    if (e.prev) e.prev.next = e.next;
    else this.#heads[t] = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.#tails[t] = e.prev;
    e.prev = e.next = undefined;
    this.#size--;
  }

  #remove(e: Entry, sent: boolean): void {
    this.#unlink(e);
    this.#byKey.delete(e.key);
    e.onDone?.(sent);
  }

  #pruneOne(): void {
    for (let t = this.#tails.length - 1; t >= 0; t--) {
      const e = this.#tails[t];
      if (e !== undefined) {
        this.#remove(e, false);
        this.pruned++;
        return;
      }
    }
  }
}
