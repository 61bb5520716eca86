/**
 * Call deadlines without a timer per call.
 *
 * Why: in Deno 2.9 a `setTimeout` + `clearTimeout` pair costs 4–10 µs (measured: 200,000 pairs
 * in a loop), more than the rest of a unary call's client-side work; with a deadline on every
 * call (the `ClusterClient` always sets one) timers were the largest single cost in a CPU
 * profile of the caller. Calls with the same timeout expire in the order they were made, so each
 * distinct timeout gets a FIFO list, and ONE timer is armed for the earliest deadline of all.
 * A finished call only marks its entry; marked entries leave the front of their list at once
 * (calls mostly finish in order) and a list with many marked entries inside is compacted, so a
 * list holds about as many entries as calls in flight.
 *
 * The timer outlives the calls: when the last call in flight ends, it is unref'd (it no longer
 * keeps the process alive) instead of cleared, and the next call refs it again unless it needs
 * an earlier expiry. With calls one at a time (each done before the next starts) that is one
 * `setTimeout` per timeout period instead of a `setTimeout` + `clearTimeout` pair per call:
 * 0.11 µs against 4.4 µs per call (`deno run -A bench/runtime_costs.ts`), on the latency path of
 * both the caller and the server. A timer that fires with nothing due arms no other, and clients
 * and servers clear an idle one as they close ({@linkcode DeadlineQueue.releaseIdle}).
 *
 * @module
 */

import { tickNow } from "../tick_clock.ts";

/** A scheduled deadline; {@linkcode DeadlineQueue.cancel} it when the call ends first. */
export interface Deadline {
  /** `performance.now()` at which it expires. */
  readonly at: number;
  /** What to run on expiry; undefined once cancelled or fired. */
  expire: (() => void) | undefined;
  /** The FIFO list holding it (undefined for the rare fallback timer). */
  readonly list: DeadlineList | undefined;
  /** The fallback timer, when there were too many distinct timeouts for lists. */
  timer?: ReturnType<typeof setTimeout>;
}

/** Deadlines of one timeout value, in expiry order. */
interface DeadlineList {
  timeoutMs: number;
  items: Deadline[];
  head: number;
  live: number;
}

// Distinct timeouts get their own list up to this many; beyond it (e.g. retries with the
// remaining time of many different deadlines) an entry falls back to its own timer.
const MAX_LISTS = 64;

/** Deadlines sharing one timer. */
export class DeadlineQueue {
  #lists = new Map<number, DeadlineList>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedAt = Infinity;
  // Whether the armed timer is unref'd (no deadline live: see the module doc).
  #idle = false;
  #live = 0;

  /** Entries scheduled and not yet cancelled or fired. */
  get size(): number {
    return this.#live;
  }

  /** Runs `expire` after `timeoutMs` unless cancelled first. */
  add(timeoutMs: number, expire: () => void): Deadline {
    // The burst's clock (one op call per burst, not per call): at most the burst's duration
    // early, microseconds against deadlines in milliseconds.
    const at = tickNow() + timeoutMs;
    let list = this.#lists.get(timeoutMs);
    if (list === undefined) {
      if (this.#lists.size >= MAX_LISTS) this.#dropEmptyLists();
      if (this.#lists.size >= MAX_LISTS) {
        const d: Deadline = { at, expire, list: undefined };
        d.timer = setTimeout(() => {
          const f = d.expire;
          d.expire = undefined;
          f?.();
        }, timeoutMs);
        return d;
      }
      list = { timeoutMs, items: [], head: 0, live: 0 };
      this.#lists.set(timeoutMs, list);
    }
    const d: Deadline = { at, expire, list };
    list.items.push(d);
    list.live++;
    this.#live++;
    if (at < this.#armedAt) this.#arm(at);
    else if (this.#idle) {
      Deno.refTimer(this.#timer!);
      this.#idle = false;
    }
    return d;
  }

  /** Forgets a deadline whose call ended first. */
  cancel(d: Deadline): void {
    if (d.expire === undefined) return;
    d.expire = undefined;
    const list = d.list;
    if (list === undefined) {
      clearTimeout(d.timer);
      return;
    }
    list.live--;
    this.#live--;
    this.#trim(list);
    // Nothing left: the timer stays armed (see the module doc) but may not keep the process alive.
    if (this.#live === 0 && this.#timer !== undefined && !this.#idle) {
      Deno.unrefTimer(this.#timer);
      this.#idle = true;
    }
  }

  /**
   * Clears the timer when no deadline is live. Clients and servers call it as they close: the
   * idle timer holds no process, but Deno's test sanitizer can still count it as a timer the test
   * left behind.
   */
  releaseIdle(): void {
    if (this.#live > 0 || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
    this.#idle = false;
  }

  /** Drops finished entries from the front; compacts a list full of finished entries. */
  #trim(list: DeadlineList): void {
    const items = list.items;
    while (list.head < items.length && items[list.head].expire === undefined) list.head++;
    if (list.head === items.length) {
      // An empty list stays for the next call of its timeout (deleting it cost a Map delete and
      // set per call at one call in flight); empty lists go when lists run out and as the timer fires.
      items.length = 0;
      list.head = 0;
    } else if (items.length - list.head > 2 * list.live + 64) {
      list.items = items.slice(list.head).filter((d) => d.expire !== undefined);
      list.head = 0;
    } else if (list.head > 1024 && list.head * 2 > items.length) {
      list.items = items.slice(list.head);
      list.head = 0;
    }
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#idle = false;
    this.#timer = setTimeout(this.#fire, Math.max(0, at - performance.now()));
  }

  #dropEmptyLists(): void {
    for (const [ms, list] of this.#lists) if (list.live === 0) this.#lists.delete(ms);
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    this.#idle = false;
    const now = performance.now();
    const due: (() => void)[] = [];
    let next = Infinity;
    for (const list of this.#lists.values()) {
      const items = list.items;
      while (list.head < items.length) {
        const d = items[list.head];
        if (d.expire !== undefined) {
          if (d.at > now) break;
          due.push(d.expire);
          d.expire = undefined;
          list.live--;
          this.#live--;
        }
        list.head++;
      }
      this.#trim(list);
      if (list.head < list.items.length) next = Math.min(next, list.items[list.head].at);
    }
    this.#dropEmptyLists();
    if (next !== Infinity) this.#arm(next);
    // After the bookkeeping: an expiry handler may schedule or cancel deadlines.
    for (const f of due) f();
  };
}

/** The process-wide queue the RPC client and server use. */
export const deadlines: DeadlineQueue = new DeadlineQueue();
