/**
 * A byte budget shared by the frame readers of one connection: a reader must take from it
 * before it grows its buffer for a large frame, and gives the bytes back when the buffer shrinks.
 * A frame that does not fit is refused (`resource_exhausted`), not waited for: a paused QUIC
 * stream still lets the peer fill its receive window (about 1.25 MB per stream in Deno), so
 * waiting would move the memory into QUIC instead of bounding it.
 *
 * @module
 */

/** Bytes a connection (or, as the parent, the whole server) may hold in partly received frames. */
export class ByteBudget {
  #free: number;
  #parent: ByteBudget | undefined;

  /**
   * @param bytes the budget
   * @param parent a budget every take must also fit (the server's, for a connection's)
   */
  constructor(bytes: number, parent?: ByteBudget) {
    this.#free = bytes;
    this.#parent = parent;
  }

  /** Takes `n` bytes if that many are free here and in the parent; returns whether it did. */
  take(n: number): boolean {
    if (n > this.#free) return false;
    if (this.#parent && !this.#parent.take(n)) return false;
    this.#free -= n;
    return true;
  }

  /** Gives back `n` bytes taken before. */
  give(n: number): void {
    this.#free += n;
    this.#parent?.give(n);
  }

  /** Bytes still free. */
  get free(): number {
    return this.#free;
  }
}
