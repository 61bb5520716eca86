/**
 * Payload encoding: MessagePack through reused encoder/decoder instances (the package's own,
 * `./msgpack.ts`, byte-compatible with `@msgpack/msgpack`); a `Uint8Array` passes
 * through untouched (flagged `F.RAW` in the frame header); `undefined` is the empty payload; an
 * `EncodedPayload` is sent as its bytes (already encoded) and can be received undecoded.
 *
 * @module
 */

import { Decoder } from "@msgpack/msgpack";
import { EncodedPayload } from "./encoded.ts";
import { RpcError } from "../errors.ts";
import { F, FRAME_FIXED } from "./frames.ts";
import { PayloadLimits } from "./payload_limits.ts";
import { MAX_DECODE_DEPTH, MsgpackDecoder, MsgpackEncoder } from "./msgpack.ts";
import { frameBody } from "./reader.ts";
import type { FrameWriter } from "./writer.ts";

const EMPTY = new Uint8Array(0);
// Room a frame batch must have left for a payload to be encoded into it: smaller ones are cut.
const IN_PLACE_ROOM = 256;

// Small payloads are copied out of the reused read buffer into views of a shared pool (like
// Node's Buffer pool): a fresh ArrayBuffer per message measurably costs allocation and GC time.
const POOL_BYTES = 64 * 1024;
const POOLED_MAX = 1024;
let pool = new Uint8Array(POOL_BYTES);
let poolPos = 0;

/** Copies `b` into memory the caller may keep (a pool view when small). */
export function copyOut(b: Uint8Array): Uint8Array {
  const n = b.length;
  if (n > POOLED_MAX) return b.slice();
  if (poolPos + n > POOL_BYTES) {
    pool = new Uint8Array(POOL_BYTES);
    poolPos = 0;
  }
  // The constructor, not subarray(): subarray goes through the species lookup and is slower.
  const v = new Uint8Array(pool.buffer, poolPos, n);
  v.set(b);
  poolPos = (poolPos + n + 7) & ~7;
  return v;
}

function notEncodable(e: unknown): RpcError {
  return new RpcError("invalid_argument", `cannot encode value: ${(e as Error).message}`, {
    cause: e,
  });
}

function notDecodable(e: unknown): RpcError {
  return new RpcError("invalid_argument", `payload not decodable: ${(e as Error).message}`, {
    cause: e,
  });
}

/**
 * Encodes and decodes call payloads and metadata. One instance per client or server. Every
 * MessagePack input is checked against its {@linkcode PayloadLimits} before it is decoded.
 */
export class PayloadCodec {
  #enc = new MsgpackEncoder();
  #dec = new MsgpackDecoder();
  // The library's decoder, which does not recurse, for depth limits beyond the recursive one's.
  #deep: Decoder | undefined;
  #limits: PayloadLimits;

  /** @param limits structural limits for decoded input (default: the documented defaults) */
  constructor(limits: PayloadLimits = new PayloadLimits()) {
    this.#limits = limits;
    if (limits.maxDepth > MAX_DECODE_DEPTH) this.#deep = new Decoder();
  }

  /** Flags of the last {@linkcode encode} (`F.RAW` or 0). */
  flags = 0;
  /** Whether the last {@linkcode encode} result is caller-owned (not the shared encoder buffer). */
  owned = false;

  /**
   * Encodes `value`. The result may be the encoder's shared buffer, valid until the next call:
   * copy it (the frame writer does) before encoding again.
   *
   * @throws {RpcError} `invalid_argument` when the value cannot be encoded
   */
  encode(value: unknown): Uint8Array {
    if (value instanceof Uint8Array) {
      this.flags = F.RAW;
      this.owned = true;
      return value;
    }
    this.flags = 0;
    this.owned = true;
    if (value === undefined) return EMPTY;
    if (value instanceof EncodedPayload) {
      if (value.isRawBytes) this.flags = F.RAW;
      return value.bytes;
    }
    this.owned = false;
    try {
      return this.#enc.encodeShared(value);
    } catch (e) {
      throw notEncodable(e);
    }
  }

  /**
   * Encodes `value` as the payload of a frame on `writer`, straight into its batch when it is a
   * MessagePack value (not bytes, not an `EncodedPayload`, not `undefined`) that fits there and in
   * a frame of `maxFrame` bytes (its length after the prefix): returns `undefined`, the frame
   * queued. Otherwise, or when the writer is broken, returns the payload for `writer.frame()` or
   * a bulk lane, with {@linkcode flags} and {@linkcode owned} set as {@linkcode encode} sets them.
   * No view of the shared encoder buffer is made and no copy into the batch (a view per frame was
   * a visible share of a small call's cost).
   *
   * @throws {RpcError} `invalid_argument` when the value cannot be encoded
   */
  encodeFrame(
    writer: FrameWriter,
    type: number,
    flags: number,
    id: number,
    head: Uint8Array | undefined,
    value: unknown,
    maxFrame: number,
  ): Uint8Array | undefined {
    if (value === undefined || value instanceof Uint8Array || value instanceof EncodedPayload) {
      return this.encode(value);
    }
    const at = writer.openFrame(type, flags, id, head, IN_PLACE_ROOM);
    if (at < 0) return this.encode(value);
    this.flags = 0;
    this.owned = false;
    const limit = at - FRAME_FIXED - (head === undefined ? 0 : head.length) + maxFrame;
    let end: number;
    try {
      end = this.#enc.encodeAt(value, writer.buffer, at, Math.min(limit, writer.room));
    } catch (e) {
      throw notEncodable(e);
    }
    if (end < 0) return this.#enc.spilled();
    writer.closeFrame(end);
    return undefined;
  }

  /**
   * Decodes a payload. `bytes` may be a view into a reused read buffer; nothing returned aliases
   * it unless `owned` says the caller gave up that memory (a large frame the reader handed over):
   * then the result may be `bytes` itself or views of it, with no copy. Small byte payloads come
   * back as views into a shared pool (check `byteOffset`/`byteLength` before using `.buffer`).
   *
   * @throws {RpcError} `invalid_argument` when the bytes are not valid MessagePack or break a
   * limit (message `payload rejected: …`)
   */
  decode(flags: number, bytes: Uint8Array, owned = false): unknown {
    return this.decodeAt(flags, bytes, 0, bytes.length, owned);
  }

  /**
   * {@linkcode decode} of the payload at `bytes[start..end)` (a frame body in the reader's
   * buffer), without a view made of it when it is MessagePack.
   *
   * @throws {RpcError} as {@linkcode decode}
   */
  decodeAt(flags: number, bytes: Uint8Array, start: number, end: number, owned = false): unknown {
    if (flags & F.RAW) {
      const body = start === 0 && end === bytes.length ? bytes : frameBody(bytes, start, end);
      return owned ? body : copyOut(body);
    }
    if (end === start) return undefined;
    this.#limits.check(bytes, start, end);
    try {
      // Unless owned, `bin` values are copied out of the input: they would be views into it.
      if (this.#deep !== undefined) {
        const body = frameBody(bytes, start, end);
        return this.#deep.decode(owned ? body : copyOut(body));
      }
      return this.#dec.decode(bytes, owned ? undefined : copyOut, start, end);
    } catch (e) {
      throw notDecodable(e);
    }
  }

  /**
   * Keeps a payload encoded: copies `bytes` out of the (reused) read buffer into an
   * {@linkcode EncodedPayload}, without decoding; `owned` bytes (see {@linkcode decode}) are kept
   * as they are.
   */
  keep(flags: number, bytes: Uint8Array, owned = false): EncodedPayload {
    return new EncodedPayload(
      bytes.length === 0 ? EMPTY : owned ? bytes : copyOut(bytes),
      (flags & F.RAW) !== 0,
    );
  }

  /** Encodes call metadata (string → string) to owned bytes. */
  encodeMeta(meta: Record<string, string>): Uint8Array {
    for (const [k, v] of Object.entries(meta)) {
      if (typeof v !== "string") {
        throw new RpcError("invalid_argument", `meta '${k}' must be a string`);
      }
    }
    const b = this.#enc.encode(meta);
    if (b.length > 0xffff) throw new RpcError("invalid_argument", "meta exceeds 64 KiB");
    return b;
  }

  /**
   * Decodes call metadata; anything that is not a string map is rejected.
   *
   * @throws {RpcError} `invalid_argument` on malformed metadata
   */
  decodeMeta(bytes: Uint8Array): Record<string, string> {
    if (bytes.length === 0) return {};
    this.#limits.check(bytes);
    let m: unknown;
    try {
      m = (this.#deep ?? this.#dec).decode(bytes);
    } catch {
      throw new RpcError("invalid_argument", "malformed call metadata");
    }
    if (typeof m !== "object" || m === null || Array.isArray(m)) {
      throw new RpcError("invalid_argument", "call metadata must be a map");
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(m)) {
      if (typeof v !== "string") throw new RpcError("invalid_argument", `meta '${k}' not a string`);
      out[k] = v;
    }
    return out;
  }
}
