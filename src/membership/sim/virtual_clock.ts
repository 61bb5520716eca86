/**
 * Virtual time for the simulator: a binary heap of timers run in (time, insertion) order, with
 * per-node views that can be paused (the node runs nothing, then catches up).
 *
 * Protocol code may use `async` functions. Their continuations are microtasks, which only run when
 * the scheduler yields; so the scheduler runs every event of one short quantum of virtual time
 * (default 0.25 ms) synchronously, then yields a few microtask turns before the next quantum.
 * Continuations therefore run in the quantum that caused them, never later in virtual time.
 * Promises that wait on real I/O (e.g. WebCrypto) are not virtual: do not mix them in.
 *
 * @module
 */
import type { Clock } from "../transport.ts";
import { SeededRandom } from "./rng.ts";

/** Event kinds: a `setTimeout` callback, a datagram arriving at a node, a network task. */
const KIND_TIMER = 0;
const KIND_PACKET = 1;
const KIND_TASK = 2;

/** One scheduled event; plain fields so the heap does not allocate closures per packet. @internal */
export class SimEvent {
  /** Virtual time it fires at. */
  time: number;
  /** Insertion order: ties fire first-in first-out. */
  seq: number;
  /** What it is. */
  kind: number;
  /** Timer callback or task; undefined once cancelled. */
  fn: (() => void) | undefined;
  /** The node it belongs to (pauses defer it, crashes drop it); undefined for global events. */
  node: SimNodeState | undefined;
  /** Packet payload (kind Packet). */
  data: Uint8Array | undefined;
  /** Packet sender address (kind Packet). */
  from: string;
  /** Timer handle (kind Timer), 0 otherwise. */
  handle: number;
  /** Set by `clearTimeout`. */
  cancelled = false;

  constructor(
    time: number,
    seq: number,
    kind: number,
    fn: (() => void) | undefined,
    node: SimNodeState | undefined,
    data: Uint8Array | undefined,
    from: string,
    handle: number,
  ) {
    this.time = time;
    this.seq = seq;
    this.kind = kind;
    this.fn = fn;
    this.node = node;
    this.data = data;
    this.from = from;
    this.handle = handle;
  }
}

/** Per-node scheduling state shared by the node's clock and transport. @internal */
export interface SimNodeState {
  /** The node's address. */
  readonly addr: string;
  /** Virtual time until which the node is paused (runs nothing). */
  pausedUntil: number;
  /** A crashed node never runs again; its events are dropped. */
  crashed: boolean;
  /** Events that fired while paused, in firing order. */
  deferred: SimEvent[];
  /** Datagrams among `deferred` (bounded like a socket receive buffer). */
  deferredPackets: number;
  /** Delivers one datagram (set by the transport). */
  deliver(data: Uint8Array, from: string): void;
  /** Counts a datagram dropped because the paused node's buffer was full. */
  dropBuffered(): void;
}

/** Options of {@linkcode VirtualClock}. */
export interface VirtualClockOptions {
  /** Start time, ms; default 0. */
  start?: number;
  /** Seed of {@linkcode VirtualClock.random}; default 1. */
  seed?: number;
  /** Events within this much virtual time run before microtasks are drained; default 0.25 ms. */
  quantumMs?: number;
  /** Microtask turns yielded after each quantum (depth of `await` chains resolved); default 12. */
  drainDepth?: number;
}

/**
 * A deterministic virtual clock. `now()` only moves inside {@linkcode VirtualClock.runUntil} /
 * {@linkcode VirtualClock.advance}; timers fire in time order, ties in insertion order.
 *
 * @example
 * ```ts
 * import { VirtualClock } from "@rpcnet/cluster/sim";
 *
 * const clock = new VirtualClock();
 * const fired: number[] = [];
 * clock.setTimeout(() => fired.push(clock.now()), 1500);
 * await clock.advance(2000);
 * console.log(fired); // [1500]
 * ```
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  #nextHandle = 1;
  readonly #heap: SimEvent[] = [];
  readonly #timers = new Map<number, SimEvent>();
  readonly #quantum: number;
  readonly #drainDepth: number;
  #running = false;
  /** Seeded random source for everything the simulation draws (loss, jitter, ids). */
  readonly rng: SeededRandom;
  /** Events run so far. */
  eventsRun = 0;
  /** Callbacks that threw (the simulation continues); see {@linkcode VirtualClock.lastError}. */
  errors = 0;
  /** The most recent error thrown by a callback. */
  lastError: unknown = undefined;

  /**
   * Creates a clock at `options.start` (default 0).
   *
   * @param options start time, seed, batching.
   */
  constructor(options: VirtualClockOptions = {}) {
    this.#now = options.start ?? 0;
    this.rng = new SeededRandom(options.seed ?? 1);
    this.#quantum = options.quantumMs ?? 0.25;
    this.#drainDepth = options.drainDepth ?? 12;
  }

  /** Current virtual time, ms. */
  now(): number {
    return this.#now;
  }

  /** A float in [0, 1) from the seeded generator. */
  random(): number {
    return this.rng.next();
  }

  /** Timers and in-flight events still scheduled. */
  get pending(): number {
    return this.#heap.length;
  }

  /** Runs `fn` after `ms` virtual milliseconds (negative or NaN counts as 0). */
  setTimeout(fn: () => void, ms: number): number {
    return this.scheduleTimer(fn, ms, undefined);
  }

  /** Cancels a timer; unknown or already-fired handles are ignored. */
  clearTimeout(handle: number): void {
    const ev = this.#timers.get(handle);
    if (ev) {
      ev.cancelled = true;
      ev.fn = undefined;
      this.#timers.delete(handle);
    }
  }

  /** @internal a timer owned by `node` (deferred while it is paused, dropped once it crashed). */
  scheduleTimer(fn: () => void, ms: number, node: SimNodeState | undefined): number {
    const handle = this.#nextHandle++;
    const delay = ms > 0 ? ms : 0;
    const ev = new SimEvent(
      this.#now + delay,
      this.#seq++,
      KIND_TIMER,
      fn,
      node,
      undefined,
      "",
      handle,
    );
    this.#timers.set(handle, ev);
    this.#push(ev);
    return handle;
  }

  /** @internal a datagram reaching `node` at `time`. */
  schedulePacket(time: number, node: SimNodeState, data: Uint8Array, from: string): void {
    this.#push(new SimEvent(time, this.#seq++, KIND_PACKET, undefined, node, data, from, 0));
  }

  /** @internal a network task at `time` (owned by `node` when given). */
  scheduleTask(time: number, fn: () => void, node: SimNodeState | undefined): void {
    this.#push(new SimEvent(time, this.#seq++, KIND_TASK, fn, node, undefined, "", 0));
  }

  /** Runs every event up to `now() + ms`, then sets the time to it. */
  advance(ms: number): Promise<void> {
    return this.runUntil(this.#now + Math.max(0, ms));
  }

  /**
   * Runs every event with time ≤ `t` in order (yielding to microtasks between quanta), then sets
   * the time to `t` (if later). Re-entrant calls are refused.
   */
  async runUntil(t: number): Promise<void> {
    if (this.#running) throw new Error("VirtualClock.runUntil is already running");
    this.#running = true;
    try {
      const heap = this.#heap;
      while (heap.length > 0 && heap[0].time <= t) {
        const end = Math.min(t, heap[0].time + this.#quantum);
        while (heap.length > 0 && heap[0].time <= end) {
          const ev = this.#pop();
          if (ev.time > this.#now) this.#now = ev.time;
          this.#run(ev);
        }
        for (let i = 0; i < this.#drainDepth; i++) await null;
      }
      if (t > this.#now) this.#now = t;
    } finally {
      this.#running = false;
    }
  }

  /**
   * Advances in steps of `stepMs` until `done()` is true or `maxMs` of virtual time has passed.
   * Returns whether `done()` became true.
   */
  async runUntilCondition(
    done: () => boolean,
    maxMs: number,
    stepMs = 100,
  ): Promise<boolean> {
    const limit = this.#now + maxMs;
    while (!done()) {
      if (this.#now >= limit) return false;
      await this.runUntil(Math.min(limit, this.#now + stepMs));
    }
    return true;
  }

  /**
   * @internal runs the deferred events of a node whose pause ended. Like a real event loop after
   * a stall, expired timers run first (in time order), then the buffered I/O (datagrams, stream
   * traffic) is read: a node back from a GC pause sees its probe and suspicion timeouts expire
   * before it reads the acks and refutations that arrived meanwhile — the case Lifeguard targets.
   */
  resumeNode(node: SimNodeState): void {
    const list = node.deferred;
    node.deferred = [];
    node.deferredPackets = 0;
    for (const ev of list) {
      if (node.crashed) return;
      if (ev.kind === KIND_TIMER) this.#exec(ev);
    }
    for (const ev of list) {
      if (node.crashed) return;
      if (ev.kind !== KIND_TIMER) this.#exec(ev);
    }
  }

  #run(ev: SimEvent): void {
    if (ev.cancelled) return;
    const node = ev.node;
    if (node !== undefined) {
      if (node.crashed) {
        if (ev.kind === KIND_TIMER) this.#timers.delete(ev.handle);
        return;
      }
      if (node.pausedUntil > this.#now) {
        if (ev.kind === KIND_PACKET) {
          if (node.deferredPackets >= SOCKET_BUFFER_PACKETS) {
            node.dropBuffered();
            return;
          }
          node.deferredPackets++;
        }
        node.deferred.push(ev);
        return;
      }
    }
    this.#exec(ev);
  }

  #exec(ev: SimEvent): void {
    if (ev.cancelled) return;
    this.eventsRun++;
    try {
      if (ev.kind === KIND_PACKET) {
        ev.node!.deliver(ev.data!, ev.from);
      } else {
        if (ev.kind === KIND_TIMER) this.#timers.delete(ev.handle);
        const fn = ev.fn!;
        ev.fn = undefined;
        fn();
      }
    } catch (e) {
      this.errors++;
      this.lastError = e;
    }
  }

  #push(ev: SimEvent): void {
    const heap = this.#heap;
    let i = heap.length;
    heap.push(ev);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = heap[p];
      if (pe.time < ev.time || (pe.time === ev.time && pe.seq < ev.seq)) break;
      heap[i] = pe;
      i = p;
    }
    heap[i] = ev;
  }

  #pop(): SimEvent {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop()!;
    const n = heap.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        let ce = heap[l];
        if (r < n) {
          const re = heap[r];
          if (re.time < ce.time || (re.time === ce.time && re.seq < ce.seq)) {
            c = r;
            ce = re;
          }
        }
        if (last.time < ce.time || (last.time === ce.time && last.seq < ce.seq)) break;
        heap[i] = ce;
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }
}

/** Datagrams a paused node buffers (like a socket receive buffer); more are dropped. */
export const SOCKET_BUFFER_PACKETS = 256;

/**
 * The clock one simulated node sees: virtual time, but its timers do not run while the node is
 * paused (they run, late and in order, when it resumes) and never run once it crashed.
 */
export class NodeClock implements Clock {
  readonly #clock: VirtualClock;
  readonly #node: SimNodeState;

  /** @internal created by `SimNetwork`. */
  constructor(clock: VirtualClock, node: SimNodeState) {
    this.#clock = clock;
    this.#node = node;
  }

  /** Current virtual time, ms. */
  now(): number {
    return this.#clock.now();
  }

  /** Runs `fn` after `ms` virtual ms, deferred while the node is paused. */
  setTimeout(fn: () => void, ms: number): number {
    return this.#clock.scheduleTimer(fn, ms, this.#node);
  }

  /** Cancels a timer. */
  clearTimeout(handle: number): void {
    this.#clock.clearTimeout(handle);
  }
}
