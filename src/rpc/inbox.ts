/**
 * A bounded queue of frames read from a streaming call's QUIC stream. The reader stops pulling
 * from QUIC when the queue is full, so a slow consumer pushes back on the peer through QUIC flow
 * control (backpressure).
 *
 * @module
 */

import type { Frame, FrameReader, OversizeHandler } from "./reader.ts";

/** Receives control frames as they arrive; returns true when it consumed the frame. */
export type ControlHandler = (frame: Frame) => boolean;

/** Bytes of queued frame bodies at which an inbox stops reading (whatever the frame count). */
export const INBOX_MAX_BYTES = 1024 * 1024;

/** Frames from a stream, queued up to a capacity (in frames, and {@linkcode INBOX_MAX_BYTES}). */
export class Inbox {
  #q: Frame[] = [];
  #bytes = 0;
  #capacity: number;
  #waiter: { resolve: (f: Frame | null) => void; reject: (e: unknown) => void } | undefined;
  #space: (() => void) | undefined;
  #ended = false;
  #error: unknown = undefined;

  /**
   * Starts reading `reader` immediately.
   *
   * @param reader the stream's frame reader
   * @param capacity frames held before reading pauses
   * @param onControl sees every frame first (e.g. CANCEL) and may consume it
   * @param onOversize receives frames over the size limit
   */
  constructor(
    reader: FrameReader,
    capacity: number,
    onControl?: ControlHandler,
    onOversize?: OversizeHandler,
  ) {
    this.#capacity = capacity;
    this.#pump(reader, onControl, onOversize);
  }

  /** The next frame; null when the peer finished the stream cleanly; rejects after {@linkcode fail}. */
  next(): Promise<Frame | null> {
    if (this.#q.length > 0) {
      const f = this.#q.shift()!;
      this.#bytes -= f.body.length;
      if (this.#space) {
        const s = this.#space;
        this.#space = undefined;
        s();
      }
      return Promise.resolve(f);
    }
    if (this.#ended) {
      return this.#error === undefined ? Promise.resolve(null) : Promise.reject(this.#error);
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** Ends the inbox with `error` (queued frames are dropped); pending and later reads reject. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#q = [];
    this.#bytes = 0;
    this.#finish(error);
  }

  #finish(error: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    const w = this.#waiter;
    this.#waiter = undefined;
    if (w) error === undefined ? w.resolve(null) : w.reject(error);
    const s = this.#space;
    this.#space = undefined;
    s?.();
  }

  async #pump(
    reader: FrameReader,
    onControl: ControlHandler | undefined,
    onOversize: OversizeHandler | undefined,
  ): Promise<void> {
    try {
      for (;;) {
        if (this.#q.length >= this.#capacity || this.#bytes >= INBOX_MAX_BYTES) {
          await new Promise<void>((r) => this.#space = r);
        }
        if (this.#ended) return;
        const f = await reader.next(onOversize);
        if (this.#ended) return;
        if (f === null) return this.#finish(undefined);
        if (onControl?.(f)) continue;
        const w = this.#waiter;
        if (w) {
          this.#waiter = undefined;
          w.resolve(f);
        } else {
          this.#q.push(f);
          this.#bytes += f.body.length;
        }
      }
    } catch (e) {
      this.#finish(e);
    }
  }
}
