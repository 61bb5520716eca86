/**
 * The write path: frames appended to a batch buffer and written once per turn of the event loop
 * (`setImmediate`, which runs after the turn's I/O and timer callbacks, one for all the writers
 * with frames queued), so a burst of calls or responses costs one write instead of one each. Per
 * turn rather than per microtask: the responses of handlers whose timers fire together, or the
 * calls a caller issues on reading several connections' responses in one turn, then also share a
 * write (measured: 8 worker processes of 2 ms `hold` handlers went from 0.65 to 0.86 of linear
 * scaling, `deno task bench scale`, with less CPU per call).
 *
 * @module
 */

import { FRAME_FIXED, HEADER_BYTES, LEN_BYTES, writeU32 } from "./frames.ts";
import type { ByteConn } from "./reader.ts";
import { setImmediate } from "node:timers";

// Payload bytes above this are written by reference instead of copied into the batch.
const COPY_LIMIT = 16 * 1024;
const MIN_BATCH = 512;
const MAX_BATCH = 64 * 1024;
const MAX_SPARES = 2;
// The batch between a flush and the next frame (nothing to write into yet; never written to).
const NO_BATCH = new Uint8Array(0);

// The flushes of every writer with frames queued this turn, run by one setImmediate: a caller
// spreading calls over several connections paid one per connection per turn before. One for all
// measured 1.067 / 1.052 / 0.989 / 1.022x calls/s over 3 worker processes, caller CPU per call
// -4 % on average (bench/fanout_ab.ts --workers-too, 30 rounds, two runs from each tree).
let pendingFlushes: (() => void)[] = [];
let flushScheduled = false;

function scheduleFlush(flush: () => void): void {
  pendingFlushes.push(flush);
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flushPending);
}

function flushPending(): void {
  flushScheduled = false;
  const flushes = pendingFlushes;
  pendingFlushes = [];
  for (const flush of flushes) flush();
}

/** A chunk waiting for a direct connection write; `batch` is its memory when reusable after. */
interface Queued {
  chunk: Uint8Array;
  batch: Uint8Array | undefined;
}

/**
 * Writes length-prefixed frames to a byte stream (a QUIC send stream or a TLS connection),
 * coalesced per turn of the event loop.
 */
export class FrameWriter {
  #w: WritableStreamDefaultWriter<Uint8Array> | undefined;
  // A connection written directly (see ByteConn): chunks wait in #queue for #pump, in order.
  #conn: ByteConn | undefined;
  #queue: Queued[] = [];
  #pumping: Promise<void> | undefined;
  #batch: Uint8Array = NO_BATCH;
  #from = 0;
  #pos = 0;
  #chunks: Uint8Array[] = [];
  #scheduled = false;
  // Batch buffers whose writes have completed, reused by later batches (two: one write may still
  // be in flight while the next turn's batch fills).
  #spares: Uint8Array[] = [];
  #flushedBytes = MIN_BATCH;
  // Bytes copied into batches since the last flush. The next turn's first batch is sized from
  // it, so that a turn's frames fit one batch: one write, and a buffer to reuse after. Sized from
  // the last batch's fill alone, a turn spanning several batches started the next one small again
  // and 97 % of a worker's flushes allocated a fresh buffer (fanout over QUIC); the caller's
  // profile had 0.31 µs per call in #reserve, 0.03 µs since.
  #turnBytes = 0;
  #failed = false;
  #closed = false;
  /** Called once when a write fails (the stream was reset or the connection lost). */
  onError: ((e: unknown) => void) | undefined;

  /** @param writable the send side of a QUIC stream, or a TLS connection written directly */
  constructor(writable: WritableStream<Uint8Array> | ByteConn) {
    if (writable instanceof WritableStream) this.#w = writable.getWriter();
    else this.#conn = writable;
  }

  /** Whether frames are queued for the next flush (this tick's batch is still open). */
  get batching(): boolean {
    return this.#scheduled;
  }

  /** Whether a write failed or the writer was closed. */
  get broken(): boolean {
    return this.#failed || this.#closed;
  }

  /**
   * Queues one frame: header, then `head`, then `payload`. `payloadOwned` says whether
   * `payload` stays unchanged after this call (a shared encoder buffer does not, and is copied).
   */
  frame(
    type: number,
    flags: number,
    id: number,
    head?: Uint8Array,
    payload?: Uint8Array,
    payloadOwned = false,
  ): void {
    if (this.#failed || this.#closed) return;
    const hlen = head ? head.length : 0;
    const plen = payload ? payload.length : 0;
    const byRef = payloadOwned && plen > COPY_LIMIT;
    const copied = HEADER_BYTES + hlen + (byRef ? 0 : plen);
    this.#turnBytes += copied;
    this.#reserve(copied);
    const b = this.#batch;
    let p = this.#pos;
    writeU32(b, p, FRAME_FIXED + hlen + plen);
    b[p + 4] = type;
    b[p + 5] = flags;
    writeU32(b, p + 6, id);
    p += HEADER_BYTES;
    if (hlen) {
      b.set(head!, p);
      p += hlen;
    }
    if (plen && !byRef) {
      b.set(payload!, p);
      p += plen;
    }
    this.#pos = p;
    if (byRef) {
      this.#cut();
      this.#chunks.push(payload!);
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      scheduleFlush(this.#flush);
    }
  }

  /**
   * Starts a frame whose payload the caller writes in place: header and `head` go into the
   * batch, and the payload may be written into {@linkcode buffer} from the returned offset up to
   * {@linkcode room}'s end (at least `minRoom` bytes). {@linkcode closeFrame} with the offset
   * after the payload queues the frame; without it nothing was queued (another frame or
   * `openFrame` overwrites it). Returns -1 when the writer is broken (the frame is dropped, as
   * {@linkcode frame} drops it).
   */
  openFrame(
    type: number,
    flags: number,
    id: number,
    head: Uint8Array | undefined,
    minRoom: number,
  ): number {
    if (this.#failed || this.#closed) return -1;
    const hlen = head ? head.length : 0;
    this.#reserve(HEADER_BYTES + hlen + minRoom);
    const b = this.#batch;
    const p = this.#pos;
    b[p + 4] = type;
    b[p + 5] = flags;
    writeU32(b, p + 6, id);
    if (hlen) b.set(head!, p + HEADER_BYTES);
    return p + HEADER_BYTES + hlen;
  }

  /** The batch {@linkcode openFrame}'s offsets are in. */
  get buffer(): Uint8Array {
    return this.#batch;
  }

  /** Where a payload written in place must end: the end of the batch. */
  get room(): number {
    return this.#batch.length;
  }

  /** Queues the frame {@linkcode openFrame} started, its payload ending at offset `end`. */
  closeFrame(end: number): void {
    const b = this.#batch;
    const p = this.#pos;
    writeU32(b, p, end - p - LEN_BYTES);
    this.#turnBytes += end - p;
    this.#pos = end;
    if (!this.#scheduled) {
      this.#scheduled = true;
      scheduleFlush(this.#flush);
    }
  }

  /** Resolves when the stream can take more data (backpressure for streaming calls). */
  ready(): Promise<void> {
    // Frames still waiting for the flush are not yet in the stream's queue: hand them over now,
    // so `ready` reflects them (a producer awaiting it must not run ahead of its consumer).
    if (this.#scheduled) this.#flush();
    return this.#w !== undefined ? this.#w.ready : this.#pumping ?? Promise.resolve();
  }

  /** Flushes queued frames and closes the send side (FIN). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    if (this.#failed) return;
    if (this.#conn !== undefined) {
      // As closing a connection's writable does: the connection closes, after the queued data.
      await this.#pumping;
      return this.#closeConn();
    }
    try {
      await this.#w!.close();
    } catch { /* already reset */ }
  }

  /** Drops queued frames and resets the send side. */
  abort(reason?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    if (this.#conn !== undefined) {
      this.#queue = [];
      return this.#closeConn();
    }
    this.#w!.abort(reason).catch(() => {});
  }

  #closeConn(): void {
    try {
      this.#conn!.close();
    } catch { /* already closed */ }
  }

  #reserve(n: number): void {
    if (this.#batch.length - this.#pos >= n) return;
    this.#cut();
    const size = Math.max(n, Math.min(MAX_BATCH, Math.max(MIN_BATCH, this.#flushedBytes * 2)));
    const spare = this.#chunks.length === 0 ? this.#spares.pop() : undefined;
    // A spare too small for this batch is dropped: batches grow with the traffic.
    this.#batch = spare !== undefined && spare.length >= size ? spare : new Uint8Array(size);
    this.#from = this.#pos = 0;
  }

  #cut(): void {
    if (this.#pos > this.#from) {
      this.#chunks.push(this.#batch.subarray(this.#from, this.#pos));
      this.#from = this.#pos;
    }
  }

  #flush = (): void => {
    this.#scheduled = false;
    this.#cut();
    const chunks = this.#chunks;
    if (chunks.length === 0) return;
    this.#chunks = [];
    // The written memory belongs to the stream until the write settles: start a new batch.
    this.#flushedBytes = this.#turnBytes;
    this.#turnBytes = 0;
    this.#batch = NO_BATCH;
    this.#from = this.#pos = 0;
    if (this.#failed || this.#closed) return;
    const w = this.#w;
    // One chunk at offset 0 is a batch of its own (a payload written by reference always
    // follows the batch holding its header), so its memory can take a later batch.
    const reuse = chunks.length === 1 && chunks[0].byteOffset === 0;
    if (w === undefined) {
      for (const chunk of chunks) {
        this.#queue.push({ chunk, batch: reuse ? new Uint8Array(chunk.buffer) : undefined });
      }
      this.#pumping ??= this.#pump();
      return;
    }
    if (reuse) {
      // The common case, one batch: reuse its memory once the stream has taken it.
      const buf = new Uint8Array(chunks[0].buffer);
      w.write(chunks[0]).then(() => this.#keep(buf), this.#fail);
      return;
    }
    for (const c of chunks) w.write(c).catch(this.#fail);
  };

  #keep(buf: Uint8Array): void {
    if (this.#spares.length < MAX_SPARES) this.#spares.push(buf);
  }

  // Writes the queued chunks in order, each to its end (a write may take part of one).
  async #pump(): Promise<void> {
    const conn = this.#conn!;
    try {
      while (this.#queue.length > 0 && !this.#failed) {
        const queue = this.#queue;
        this.#queue = [];
        for (const { chunk, batch } of queue) {
          let off = 0;
          while (off < chunk.length) {
            off += await conn.write(off === 0 ? chunk : chunk.subarray(off));
          }
          if (batch !== undefined) this.#keep(batch);
        }
      }
    } catch (e) {
      this.#fail(e);
    } finally {
      this.#pumping = undefined;
    }
  }

  #fail = (e: unknown): void => {
    if (this.#failed) return;
    this.#failed = true;
    this.onError?.(e);
  };
}
