/**
 * The calls in flight on one connection, by call id, without a `Map`.
 *
 * Why: a `Map` that takes a new, ever-increasing key per call and loses an old one rebuilds its
 * hash table every few dozen calls, and V8 links each retired table to its successor (for live
 * iterators). Once one table of that chain has been promoted to the old generation, every later
 * table — and the calls its entries pointed to — survives the young-generation GC that should
 * have freed it, is promoted, and waits for a full GC. Measured on the fan-out bench's caller
 * (`--trace-gc-nvp`): 20–25 % of what it allocated survived each scavenge, and scavenges paused
 * it 10–20 ms; V8's sampling heap profiler put those survivors at the `Map`'s `set` and
 * `delete`. With this table they were 0.3 % and scavenges took about 3 ms.
 *
 * Ids are issued in sequence, so a call lands in slot `id % slots`; the slot is free unless a
 * call issued that many ids earlier is still in flight. Then the table doubles (from 32 up to
 * 1024 slots; a connection that never calls allocates none), and past that the call goes to a
 * `Map` kept for such collisions (rare: a call outliving a thousand later ones).
 *
 * @module
 */

const MIN_SLOTS = 32;
const MAX_SLOTS = 1024;
const NO_IDS = new Uint32Array(1); // one free slot: every lookup misses until the first set

/** Values by 32-bit id: a direct table by `id % slots`, a `Map` for collisions. */
export class CallTable<V> {
  // 0 marks a free slot: ids start at 1 (id 0 always takes the collision map).
  #ids: Uint32Array = NO_IDS;
  #values: (V | undefined)[] = [undefined];
  #mask = 0;
  #overflow: Map<number, V> | undefined;
  #size = 0;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds `value` under `id` (a 32-bit id; a server also takes what a client sends: 0 and an id
   * already present go to the collision map, and {@linkcode CallTable.take} finds them there).
   */
  set(id: number, value: V): void {
    this.#size++;
    if (this.#place(id, value)) return;
    if (this.#ids.length < MAX_SLOTS && id !== 0) {
      this.#grow();
      if (this.#place(id, value)) return;
    }
    (this.#overflow ??= new Map()).set(id, value);
  }

  #place(id: number, value: V): boolean {
    const i = id & this.#mask;
    if (this.#ids[i] !== 0 || id === 0 || this.#ids === NO_IDS) return false;
    this.#ids[i] = id;
    this.#values[i] = value;
    return true;
  }

  // Doubles the direct table, moving every entry (collided ones too) to where it now fits.
  #grow(): void {
    const ids = this.#ids, values = this.#values, overflow = this.#overflow;
    const n = ids === NO_IDS ? MIN_SLOTS : ids.length * 2;
    this.#ids = new Uint32Array(n);
    this.#values = new Array(n).fill(undefined);
    this.#mask = n - 1;
    this.#overflow = undefined;
    const moved = (id: number, v: V) => {
      if (!this.#place(id, v)) (this.#overflow ??= new Map()).set(id, v);
    };
    if (ids !== NO_IDS) {
      for (let i = 0; i < ids.length; i++) if (ids[i] !== 0) moved(ids[i], values[i]!);
    }
    if (overflow) { for (const [id, v] of overflow) moved(id, v); }
  }

  /** The value under `id`, if any. */
  get(id: number): V | undefined {
    const i = id & this.#mask;
    if (this.#ids[i] === id && id !== 0) return this.#values[i];
    return this.#overflow?.get(id);
  }

  /** Removes and returns the value under `id`, if any. */
  take(id: number): V | undefined {
    const i = id & this.#mask;
    if (this.#ids[i] === id && id !== 0) {
      const v = this.#values[i];
      this.#ids[i] = 0;
      this.#values[i] = undefined;
      this.#size--;
      return v;
    }
    const overflow = this.#overflow;
    if (overflow === undefined) return undefined;
    const v = overflow.get(id);
    if (v === undefined) return undefined;
    overflow.delete(id);
    if (overflow.size === 0) this.#overflow = undefined;
    this.#size--;
    return v;
  }

  /** Every value held (a snapshot: the table may change while the caller goes through it). */
  values(): V[] {
    const out: V[] = [];
    if (this.#size === 0) return out;
    for (let i = 0; i < this.#ids.length; i++) if (this.#ids[i] !== 0) out.push(this.#values[i]!);
    if (this.#overflow) out.push(...this.#overflow.values());
    return out;
  }

  /** Every id held (a snapshot, as {@linkcode CallTable.values}). */
  ids(): number[] {
    const out: number[] = [];
    if (this.#size === 0) return out;
    for (let i = 0; i < this.#ids.length; i++) if (this.#ids[i] !== 0) out.push(this.#ids[i]);
    if (this.#overflow) out.push(...this.#overflow.keys());
    return out;
  }
}
