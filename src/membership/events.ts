/**
 * Event delivery: bounded per-subscriber async iterators plus an `EventTarget`. A subscriber that
 * does not keep up loses events (counted) instead of stalling the protocol or growing memory.
 *
 * @module
 */
import type { ClusterEvent, ClusterEventType } from "./types.ts";

/** One subscriber's bounded queue, exposed as an async iterator. */
class Subscription implements AsyncIterableIterator<ClusterEvent> {
  readonly #hub: EventHub;
  readonly #capacity: number;
  #buffer: (ClusterEvent | undefined)[];
  #head = 0;
  #count = 0;
  #waiter: ((r: IteratorResult<ClusterEvent>) => void) | undefined;
  #closed = false;

  constructor(hub: EventHub, capacity: number) {
    this.#hub = hub;
    this.#capacity = capacity;
    this.#buffer = new Array(Math.min(capacity, 16));
  }

  /** Offers an event; false when the buffer is full (the event is dropped). */
  push(e: ClusterEvent): boolean {
    if (this.#closed) return true;
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ value: e, done: false });
      return true;
    }
    if (this.#count >= this.#capacity) return false;
    if (this.#count === this.#buffer.length) {
      const grown: (ClusterEvent | undefined)[] = new Array(
        Math.min(this.#capacity, this.#buffer.length * 2),
      );
      for (let i = 0; i < this.#count; i++) {
        grown[i] = this.#buffer[(this.#head + i) % this.#buffer.length];
      }
      this.#buffer = grown;
      this.#head = 0;
    }
    this.#buffer[(this.#head + this.#count) % this.#buffer.length] = e;
    this.#count++;
    return true;
  }

  next(): Promise<IteratorResult<ClusterEvent>> {
    if (this.#count > 0) {
      const e = this.#buffer[this.#head]!;
      this.#buffer[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#buffer.length;
      this.#count--;
      return Promise.resolve({ value: e, done: false });
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<ClusterEvent>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Ends the iterator; buffered events are discarded. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#count = 0;
    this.#buffer = [];
    this.#hub.unsubscribe(this);
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ClusterEvent> {
    return this;
  }
}

/** Fans events out to subscribers and to an `EventTarget`. */
export class EventHub {
  readonly #target = new EventTarget();
  #subs: Subscription[] = [];
  readonly #defaultBuffer: number;
  /** Events dropped because a subscriber's buffer was full (summed over subscribers). */
  dropped = 0;
  /** Events emitted. */
  emitted = 0;
  /** Errors thrown by EventTarget listeners (caught, counted). */
  listenerErrors = 0;

  /** @param defaultBuffer per-subscriber buffer when none is given */
  constructor(defaultBuffer = 1024) {
    this.#defaultBuffer = defaultBuffer;
  }

  /** A new bounded subscription. */
  subscribe(options?: { bufferSize?: number }): AsyncIterableIterator<ClusterEvent> {
    const size = options?.bufferSize ?? this.#defaultBuffer;
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError("bufferSize must be a positive integer");
    }
    const sub = new Subscription(this, size);
    this.#subs.push(sub);
    return sub;
  }

  /** Removes a subscription (called by the subscription itself). */
  unsubscribe(sub: object): void {
    this.#subs = this.#subs.filter((s) => s !== sub);
  }

  /** Subscribers currently attached. */
  get subscribers(): number {
    return this.#subs.length;
  }

  /** Delivers `e` to every subscriber and listener. Never throws. */
  emit(e: ClusterEvent): void {
    this.emitted++;
    for (const s of this.#subs) if (!s.push(e)) this.dropped++;
    try {
      this.#target.dispatchEvent(new CustomEvent(e.type, { detail: e }));
    } catch {
      this.listenerErrors++;
    }
  }

  /** EventTarget registration. */
  addEventListener(
    type: ClusterEventType,
    listener: (event: CustomEvent<ClusterEvent>) => void,
  ): void {
    this.#target.addEventListener(type, listener as EventListener);
  }

  /** EventTarget removal. */
  removeEventListener(
    type: ClusterEventType,
    listener: (event: CustomEvent<ClusterEvent>) => void,
  ): void {
    this.#target.removeEventListener(type, listener as EventListener);
  }

  /** Ends every subscription (shutdown). */
  closeAll(): void {
    for (const s of [...this.#subs]) s.close();
  }
}
