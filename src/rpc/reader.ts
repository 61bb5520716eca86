/**
 * The lean read path: frames parsed straight out of one reused buffer filled by a BYOB reader.
 *
 * Reading QUIC streams chunk by chunk through the default `ReadableStream` reader costs a fresh
 * allocation and promise per chunk; measured here, a BYOB reader into a reused buffer doubles
 * 1-in-flight echo throughput (11K → 25K req/s). Bodies handed to callbacks are views into that
 * buffer: valid only until the callback returns (copy what you keep).
 *
 * @module
 */

import { FRAME_FIXED, FrameError, HEADER_BYTES, LEN_BYTES, MAX_TYPE, readU32 } from "./frames.ts";

/** Receives one frame; `body` is only valid during the call. */
export type FrameHandler = (type: number, flags: number, id: number, body: Uint8Array) => void;

/**
 * Receives the header of a frame longer than the reader's limit; its body is skipped. Return
 * false to treat it as a protocol error instead.
 */
export type OversizeHandler = (type: number, flags: number, id: number, length: number) => boolean;

/** A frame copied out of the buffer (the streaming path, which pulls one frame at a time). */
export interface Frame {
  /** Frame type (see `T`). */
  type: number;
  /** Frame flags (see `F`). */
  flags: number;
  /** Call id (0 on streaming calls). */
  id: number;
  /** The body, owned by the caller. */
  body: Uint8Array;
}

const BASE_BYTES = 64 * 1024;

/** Parses length-prefixed frames from a QUIC receive stream. */
export class FrameReader {
  #byob: ReadableStreamBYOBReader | undefined;
  #plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #buf = new Uint8Array(BASE_BYTES);
  #start = 0;
  #end = 0;
  #need = HEADER_BYTES;
  #skip = 0;
  #max: number;
  #eof = false;

  /**
   * @param stream the receive side of a QUIC stream
   * @param maxFrameBytes largest accepted frame length (bytes after the length prefix)
   */
  constructor(stream: ReadableStream<Uint8Array>, maxFrameBytes: number) {
    this.#max = maxFrameBytes;
    try {
      this.#byob = stream.getReader({ mode: "byob" });
    } catch {
      this.#plain = stream.getReader();
    }
  }

  /**
   * Reads until the stream ends, dispatching every complete frame. Resolves at a clean end of
   * stream; rejects with {@linkcode FrameError} on malformed input, or with the stream's error.
   */
  async run(onFrame: FrameHandler, onOversize?: OversizeHandler): Promise<void> {
    for (;;) {
      this.#dispatch(onFrame, onOversize, Infinity);
      if (!(await this.#fill())) return this.#checkCleanEnd();
    }
  }

  /** The next frame (body copied), or null at a clean end of stream. */
  async next(onOversize?: OversizeHandler): Promise<Frame | null> {
    let out: Frame | null = null;
    const take: FrameHandler = (type, flags, id, body) => {
      out = { type, flags, id, body: body.slice() };
    };
    for (;;) {
      this.#dispatch(take, onOversize, 1);
      if (out) return out;
      if (!(await this.#fill())) {
        this.#checkCleanEnd();
        return null;
      }
    }
  }

  /** Stops reading and releases the stream. */
  cancel(reason?: unknown): void {
    (this.#byob ?? this.#plain)!.cancel(reason).catch(() => {});
  }

  #checkCleanEnd(): void {
    if (this.#end > this.#start || this.#skip > 0) {
      throw new FrameError("stream ended inside a frame");
    }
  }

  #dispatch(onFrame: FrameHandler, onOversize: OversizeHandler | undefined, limit: number): void {
    const b = this.#buf;
    const e = this.#end;
    let s = this.#start;
    let n = 0;
    while (n < limit) {
      if (this.#skip > 0) {
        const k = Math.min(this.#skip, e - s);
        s += k;
        this.#skip -= k;
        if (this.#skip > 0) break;
        continue;
      }
      if (e - s < HEADER_BYTES) {
        this.#need = HEADER_BYTES;
        break;
      }
      const len = readU32(b, s);
      const type = b[s + 4];
      if (len < FRAME_FIXED) throw new FrameError(`frame length ${len} below minimum`);
      if (type === 0 || type > MAX_TYPE) throw new FrameError(`unknown frame type ${type}`);
      if (len > this.#max) {
        const flags = b[s + 5], id = readU32(b, s + 6);
        if (!onOversize || !onOversize(type, flags, id, len)) {
          throw new FrameError(`frame of ${len} bytes exceeds the limit of ${this.#max}`);
        }
        this.#skip = len - FRAME_FIXED;
        s += HEADER_BYTES;
        continue;
      }
      const total = LEN_BYTES + len;
      if (e - s < total) {
        this.#need = total;
        break;
      }
      this.#start = s + total; // set before the callback: it may re-enter via next()
      onFrame(
        type,
        b[s + 5],
        readU32(b, s + 6),
        new Uint8Array(b.buffer, b.byteOffset + s + HEADER_BYTES, len - FRAME_FIXED),
      );
      s += total;
      n++;
    }
    this.#start = s;
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    let buf = this.#buf;
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      if (buf.length > BASE_BYTES * 4) buf = this.#buf = new Uint8Array(BASE_BYTES);
    }
    const need = this.#skip > 0 ? 1 : this.#need;
    const pending = this.#end - this.#start;
    if (need > buf.length) {
      const grown = new Uint8Array(need);
      grown.set(buf.subarray(this.#start, this.#end));
      buf = this.#buf = grown;
      this.#start = 0;
      this.#end = pending;
    } else if (
      this.#start > 0 && (buf.length - this.#start < need || buf.length - this.#end < 4096)
    ) {
      buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = pending;
    }
    if (this.#byob) {
      const { value, done } = await this.#byob.read(
        new Uint8Array(buf.buffer, this.#end, buf.length - this.#end),
      );
      if (value) {
        this.#buf = new Uint8Array(value.buffer);
        this.#end += value.byteLength;
      }
      if (done) this.#eof = true;
      return !done || (value !== undefined && value.byteLength > 0);
    }
    const { value, done } = await this.#plain!.read();
    if (done) {
      this.#eof = true;
      return false;
    }
    this.#append(value);
    return true;
  }

  #append(chunk: Uint8Array): void {
    let buf = this.#buf;
    if (buf.length - this.#end < chunk.length) {
      const pending = this.#end - this.#start;
      const size = Math.max(buf.length, pending + chunk.length);
      const next = size > buf.length ? new Uint8Array(size) : buf;
      next.set(buf.subarray(this.#start, this.#end));
      buf = this.#buf = next;
      this.#start = 0;
      this.#end = pending;
    }
    buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}
