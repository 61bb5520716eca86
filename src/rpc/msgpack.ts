/**
 * The payload codec's own MessagePack encoder and decoder. They produce the very bytes and
 * values of `@msgpack/msgpack` 3.1 with its default options (the library stays the reference in
 * the tests, and provides the extension types: `Date` as timestamp -1, `ExtData`), but cost a
 * fraction of its fixed price per message. In the fan-out caller's CPU profile the library's
 * `decode` of a 64-byte string took about 1 µs, of which 0.3 µs went to per-call set-up (a
 * `DataView` allocated per input, state-stack resets, a `try`/`finally`), and a small call
 * decodes twice (request at the worker, response at the caller) and encodes twice.
 *
 * What differs from the library, on purpose:
 * - Strings go through Deno's native `TextEncoder.encodeInto`/`TextDecoder`, but ASCII up to 32
 *   characters is encoded in one JavaScript pass, and ASCII up to 96 bytes decoded by a
 *   Latin-1 slice (see `ASCII_SLICE`). Invalid UTF-8 decodes to U+FFFD and a leading U+FEFF
 *   is kept at every length; a lone UTF-16 surrogate encodes as U+FFFD.
 * - Decoding recurses, bounded by {@linkcode MAX_DECODE_DEPTH}: the payload limits' structural
 *   pre-scan (default depth 100) runs first, and deeper limits use the library's decoder.
 * - `bin` and extension data can be copied out of the input as they are decoded (`copyBin`), so
 *   a payload read from a reused buffer needs no copy of its whole bytes first.
 *
 * @module
 */
import { DecodeError, type ExtData, ExtensionCodec } from "@msgpack/msgpack";
import { Buffer } from "node:buffer";

/** Containers nested in each other that {@linkcode MsgpackDecoder} decodes, at most (it recurses; the library does not). */
export const MAX_DECODE_DEPTH = 1000;

// The library's default maximum nesting when encoding (its `maxDepth` option).
const MAX_ENCODE_DEPTH = 100;
// Extension types as the library's default codec has them (timestamp -1, ExtData, and any a
// program registers on the default codec).
const EXT = ExtensionCodec.defaultCodec;
const EMPTY = new Uint8Array(0);
const utf8Encoder = new TextEncoder();
// ignoreBOM: a string that starts with U+FEFF keeps it.
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });
// Below this many bytes a JavaScript loop decodes an ASCII string faster than a call into the
// runtime.
const SHORT = 16;
// ASCII strings up to this many characters are encoded by a JavaScript loop (no view and no
// result object per string, as `encodeInto` needs): ahead up to 32 characters (97–175 against
// 251–291 ns), behind from 64 (340–353 against 229–238; `deno run -A bench/runtime_costs.ts`).
const SHORT_ENCODE = 32;
// ASCII strings up to this many bytes decode through node:buffer's Latin-1 slice (for ASCII the
// same string) after a JavaScript scan for non-ASCII bytes: ahead of `TextDecoder` up to 64 bytes
// (0.20–0.22 against 0.24–0.28 µs), about even at 96 and 128, behind at 256
// (`deno run -A bench/runtime_costs.ts`). `Buffer.prototype.latin1Slice` is not documented, so it
// is used only when it is there and gives the right string (checked at load); else `TextDecoder`.
const ASCII_SLICE = 96;
const latin1Slice = asciiSlicer();

function asciiSlicer(): ((b: Uint8Array, start: number, end: number) => string) | undefined {
  const f = (Buffer.prototype as { latin1Slice?: unknown }).latin1Slice;
  if (typeof f !== "function") return undefined;
  const slice = (b: Uint8Array, start: number, end: number): string => f.call(b, start, end);
  try {
    return slice(new Uint8Array([0x7f, 0x41, 0x7e, 0x30]), 1, 3) === "A~" ? slice : undefined;
  } catch {
    return undefined;
  }
}
// Up to this many characters a string is encoded in place after reserving 3 bytes per
// character; longer ones are encoded apart (the shared buffer must not grow to 3× the largest).
const LONG = 16 * 1024;
// Scratch for floats (DataView reads and writes need a buffer of their own).
const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);

function headerSize(byteLength: number): number {
  return byteLength < 32 ? 1 : byteLength < 0x100 ? 2 : byteLength < 0x10000 ? 3 : 5;
}

/**
 * A MessagePack encoder with a reused output buffer.
 *
 * @example
 * ```ts
 * import { MsgpackEncoder } from "./msgpack.ts";
 *
 * const bytes = new MsgpackEncoder().encode({ n: 1 });
 * console.log(bytes); // Uint8Array(4) [ 129, 161, 110, 1 ]
 * ```
 */
export class MsgpackEncoder {
  #own: Uint8Array = new Uint8Array(2048);
  // Where the encoding goes: #own, or the caller's buffer during encodeAt().
  #bytes: Uint8Array = this.#own;
  // A DataView of #bytes, made when first needed (encodeAt targets change from call to call).
  #view: DataView | undefined;
  #viewOf: Uint8Array | undefined;
  #pos = 0;
  // Where in #bytes this encoding started (non-zero only in encodeAt), and how far it may go.
  #base = 0;
  #limit = 0;
  #entered = false;
  #spilled: Uint8Array | undefined;

  /**
   * Encodes `value` into the shared buffer and returns a view of it, valid until the next
   * encode on this instance.
   *
   * @throws {Error} for values MessagePack cannot carry (functions, symbols, bigints), nesting
   *   deeper than 100, or containers and strings beyond 2^32 - 1
   */
  encodeShared(value: unknown): Uint8Array {
    // A getter that encodes on the same instance while it encodes: a fresh one, as the library.
    if (this.#entered) return new MsgpackEncoder().encodeShared(value);
    this.#entered = true;
    try {
      this.#bytes = this.#own;
      this.#pos = this.#base = 0;
      this.#limit = this.#own.length;
      this.#value(value, 1);
      return new Uint8Array(this.#bytes.buffer, 0, this.#pos);
    } finally {
      this.#entered = false;
    }
  }

  /**
   * Encodes `value` straight into `target` from offset `at`, up to offset `limit` (a frame
   * writer's batch: no view of a shared buffer made, and no copy into the batch after). Returns
   * the offset after the encoding; or, when it would pass `limit`, -1: the encoding then went on
   * in the shared buffer, and {@linkcode spilled} returns it (valid until the next encode).
   * Past `at`, `target` may have been written either way.
   *
   * @throws {Error} as {@linkcode encodeShared}
   */
  encodeAt(value: unknown, target: Uint8Array, at: number, limit: number): number {
    if (this.#entered) {
      this.#spilled = new MsgpackEncoder().encodeShared(value);
      return -1;
    }
    this.#entered = true;
    try {
      this.#bytes = target;
      this.#pos = this.#base = at;
      this.#limit = Math.min(limit, target.length);
      this.#value(value, 1);
      if (this.#bytes === target) return this.#pos;
      this.#spilled = new Uint8Array(this.#bytes.buffer, 0, this.#pos);
      return -1;
    } finally {
      this.#bytes = this.#own;
      this.#entered = false;
    }
  }

  /** The encoding of the last {@linkcode encodeAt} that returned -1. */
  spilled(): Uint8Array {
    return this.#spilled!;
  }

  /** Encodes `value` to bytes of its own. @throws {Error} as {@linkcode encodeShared} */
  encode(value: unknown): Uint8Array {
    return this.encodeShared(value).slice();
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#limit) return;
    // Past the end of the shared buffer, or of encodeAt's room: on in a (grown) shared buffer,
    // with what is encoded so far.
    const done = this.#pos - this.#base;
    const own = this.#own;
    const to = own.length >= done + n ? own : new Uint8Array((done + n) * 2);
    to.set(this.#bytes.subarray(this.#base, this.#pos));
    this.#own = this.#bytes = to;
    this.#pos = done;
    this.#base = 0;
    this.#limit = to.length;
  }

  #dataView(): DataView {
    const b = this.#bytes;
    if (this.#viewOf !== b) {
      this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      this.#viewOf = b;
    }
    return this.#view!;
  }

  #u8(b: number): void {
    this.#ensure(1);
    this.#bytes[this.#pos++] = b;
  }

  #typeU8(t: number, v: number): void {
    this.#ensure(2);
    const b = this.#bytes, p = this.#pos;
    b[p] = t;
    b[p + 1] = v;
    this.#pos = p + 2;
  }

  #typeU16(t: number, v: number): void {
    this.#ensure(3);
    const b = this.#bytes, p = this.#pos;
    b[p] = t;
    b[p + 1] = v >>> 8;
    b[p + 2] = v;
    this.#pos = p + 3;
  }

  #typeU32(t: number, v: number): void {
    this.#ensure(5);
    this.#bytes[this.#pos] = t;
    this.#dataView().setUint32(this.#pos + 1, v >>> 0);
    this.#pos += 5;
  }

  #typeU64(t: number, hi: number, lo: number): void {
    this.#ensure(9);
    const p = this.#pos;
    this.#bytes[p] = t;
    const view = this.#dataView();
    view.setUint32(p + 1, hi >>> 0);
    view.setUint32(p + 5, lo >>> 0);
    this.#pos = p + 9;
  }

  #value(v: unknown, depth: number): void {
    if (depth > MAX_ENCODE_DEPTH) throw new Error(`Too deep objects in depth ${depth}`);
    if (v === null || v === undefined) return this.#u8(0xc0);
    switch (typeof v) {
      case "boolean":
        return this.#u8(v ? 0xc3 : 0xc2);
      case "number":
        return this.#number(v);
      case "string":
        return this.#string(v);
    }
    this.#object(v, depth);
  }

  #number(n: number): void {
    if (!Number.isSafeInteger(n)) {
      this.#ensure(9);
      this.#bytes[this.#pos] = 0xcb;
      this.#dataView().setFloat64(this.#pos + 1, n);
      this.#pos += 9;
      return;
    }
    if (n >= 0) {
      if (n < 0x80) this.#u8(n);
      else if (n < 0x100) this.#typeU8(0xcc, n);
      else if (n < 0x10000) this.#typeU16(0xcd, n);
      else if (n < 0x100000000) this.#typeU32(0xce, n);
      else this.#typeU64(0xcf, Math.floor(n / 0x100000000), n);
    } else {
      if (n >= -0x20) this.#u8(0xe0 | (n + 0x20));
      else if (n >= -0x80) this.#typeU8(0xd0, n & 0xff);
      else if (n >= -0x8000) this.#typeU16(0xd1, n & 0xffff);
      else if (n >= -0x80000000) this.#typeU32(0xd2, n);
      else this.#typeU64(0xd3, Math.floor(n / 0x100000000), n);
    }
  }

  #stringHeader(n: number): void {
    if (n < 32) this.#u8(0xa0 + n);
    else if (n < 0x100) this.#typeU8(0xd9, n);
    else if (n < 0x10000) this.#typeU16(0xda, n);
    else if (n < 0x100000000) this.#typeU32(0xdb, n);
    else throw new Error(`Too long string: ${n} bytes in UTF-8`);
  }

  #string(s: string): void {
    const n = s.length;
    if (n <= SHORT_ENCODE) {
      // ASCII in one pass: the byte length is the length.
      this.#ensure(2 + n);
      const bytes = this.#bytes;
      const at = this.#pos + (n < 32 ? 1 : 2);
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        bytes[at + i] = c;
      }
      if (i === n) {
        if (n < 32) bytes[at - 1] = 0xa0 + n;
        else {
          bytes[at - 2] = 0xd9;
          bytes[at - 1] = n;
        }
        this.#pos = at + n;
        return;
      }
    }
    if (n > LONG) {
      const utf8 = utf8Encoder.encode(s);
      this.#stringHeader(utf8.length);
      this.#raw(utf8);
      return;
    }
    // Encode after room for the largest header the string could need, then move the bytes back
    // when the real length needs a smaller one.
    const reserved = headerSize(n * 3);
    this.#ensure(reserved + n * 3);
    const start = this.#pos;
    const bytes = this.#bytes;
    // A view by constructor: subarray() goes through the species lookup and is slower.
    const into = new Uint8Array(bytes.buffer, bytes.byteOffset + start + reserved, n * 3);
    const { written } = utf8Encoder.encodeInto(s, into);
    const header = headerSize(written);
    if (header !== reserved) {
      bytes.copyWithin(start + header, start + reserved, start + reserved + written);
    }
    this.#stringHeader(written);
    this.#pos += written;
  }

  #raw(b: Uint8Array): void {
    this.#ensure(b.length);
    this.#bytes.set(b, this.#pos);
    this.#pos += b.length;
  }

  #object(v: unknown, depth: number): void {
    const ext = EXT.tryToEncode(v, undefined);
    if (ext != null) return this.#extension(ext);
    if (Array.isArray(v)) {
      const n = v.length;
      if (n < 16) this.#u8(0x90 + n);
      else if (n < 0x10000) this.#typeU16(0xdc, n);
      else if (n < 0x100000000) this.#typeU32(0xdd, n);
      else throw new Error(`Too large array: ${n}`);
      for (let i = 0; i < n; i++) this.#value(v[i], depth + 1);
      return;
    }
    if (ArrayBuffer.isView(v)) {
      const n = v.byteLength;
      if (n < 0x100) this.#typeU8(0xc4, n);
      else if (n < 0x10000) this.#typeU16(0xc5, n);
      else if (n < 0x100000000) this.#typeU32(0xc6, n);
      else throw new Error(`Too large binary: ${n}`);
      this.#raw(new Uint8Array(v.buffer, v.byteOffset, n));
      return;
    }
    if (typeof v !== "object") {
      throw new Error(`Unrecognized object: ${Object.prototype.toString.apply(v)}`);
    }
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    const n = keys.length;
    if (n < 16) this.#u8(0x80 + n);
    else if (n < 0x10000) this.#typeU16(0xde, n);
    else if (n < 0x100000000) this.#typeU32(0xdf, n);
    else throw new Error(`Too large map object: ${n}`);
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      this.#string(k);
      this.#value(o[k], depth + 1);
    }
  }

  #extension(ext: ExtData): void {
    if (typeof ext.data === "function") {
      const data = ext.data(this.#pos - this.#base + 6);
      const n = data.length;
      if (n >= 0x100000000) throw new Error(`Too large extension object: ${n}`);
      this.#typeU32(0xc9, n);
      this.#u8(ext.type & 0xff);
      this.#raw(data);
      return;
    }
    const n = ext.data.length;
    if (n === 1) this.#u8(0xd4);
    else if (n === 2) this.#u8(0xd5);
    else if (n === 4) this.#u8(0xd6);
    else if (n === 8) this.#u8(0xd7);
    else if (n === 16) this.#u8(0xd8);
    else if (n < 0x100) this.#typeU8(0xc7, n);
    else if (n < 0x10000) this.#typeU16(0xc8, n);
    else if (n < 0x100000000) this.#typeU32(0xc9, n);
    else throw new Error(`Too large extension object: ${n}`);
    this.#u8(ext.type & 0xff);
    this.#raw(ext.data);
  }
}

const MORE_DATA = "Insufficient data";

// Map keys repeat from message to message: short ones come from a direct-mapped cache (keyed by
// a hash of their bytes) instead of being built, and then internalized as property names, each
// time. Shared by all decoders (keys are the same across connections).
const KEY_SLOTS = 4096;
const keyBytes: (Uint8Array | undefined)[] = new Array(KEY_SLOTS).fill(undefined);
const keyStrings: string[] = new Array(KEY_SLOTS).fill("");

/**
 * A MessagePack decoder for one complete value per input.
 *
 * @example
 * ```ts
 * import { MsgpackDecoder } from "./msgpack.ts";
 *
 * const value = new MsgpackDecoder().decode(new Uint8Array([0x81, 0xa1, 0x6e, 0x01]));
 * console.log(value); // { n: 1 }
 * ```
 */
export class MsgpackDecoder {
  #b: Uint8Array = EMPTY;
  #end = 0;
  #p = 0;
  #copy: ((view: Uint8Array) => Uint8Array) | undefined;
  #entered = false;

  /**
   * Decodes the one value `bytes` hold.
   *
   * @param copyBin copies `bin` and extension data out of `bytes` (the input may be reused
   *   afterwards); without it they are views of `bytes`, as the library returns them
   * @param start where the value starts in `bytes` (default 0)
   * @param end where it ends (default `bytes.length`): decoding a frame's payload in place,
   *   without a view made of it
   * @throws {DecodeError} on an unknown type byte or a bad map key, {@linkcode RangeError} when
   *   the input is truncated or has bytes after the value or nests deeper than
   *   {@linkcode MAX_DECODE_DEPTH}
   */
  decode(
    bytes: Uint8Array,
    copyBin?: (view: Uint8Array) => Uint8Array,
    start = 0,
    end: number = bytes.length,
  ): unknown {
    // An extension decoder that decodes on the same instance: a fresh one, as the library.
    if (this.#entered) return new MsgpackDecoder().decode(bytes, copyBin, start, end);
    this.#entered = true;
    this.#b = bytes;
    this.#p = start;
    this.#end = end;
    this.#copy = copyBin;
    try {
      const v = this.#value(0);
      if (this.#p !== end) {
        const n = end - start, at = this.#p - start;
        throw new RangeError(`Extra ${n - at} of ${n} byte(s) found at buffer[${at}]`);
      }
      return v;
    } finally {
      this.#b = EMPTY; // do not keep the input alive
      this.#copy = undefined;
      this.#entered = false;
    }
  }

  #need(n: number): void {
    if (this.#p + n > this.#end) throw new RangeError(MORE_DATA);
  }

  #u16(): number {
    this.#need(2);
    const b = this.#b, p = this.#p;
    this.#p = p + 2;
    return (b[p] << 8) | b[p + 1];
  }

  #u32(): number {
    this.#need(4);
    const b = this.#b, p = this.#p;
    this.#p = p + 4;
    return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  }

  // 8 bytes into the scratch view (floats and 64-bit integers read from it).
  #scratch(n: number): DataView {
    this.#need(n);
    const p = this.#p;
    for (let i = 0; i < n; i++) scratchBytes[i] = this.#b[p + i];
    this.#p = p + n;
    return scratch;
  }

  #value(depth: number): unknown {
    const b = this.#b;
    if (this.#p >= this.#end) throw new RangeError(MORE_DATA);
    const t = b[this.#p++];
    if (t < 0x80) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t < 0x90) return this.#map(t & 0x0f, depth);
    if (t < 0xa0) return this.#array(t & 0x0f, depth);
    if (t < 0xc0) return this.#string(t & 0x1f);
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xca:
        return this.#scratch(4).getFloat32(0);
      case 0xcb:
        return this.#scratch(8).getFloat64(0);
      case 0xcc:
        this.#need(1);
        return b[this.#p++];
      case 0xcd:
        return this.#u16();
      case 0xce:
        return this.#u32();
      case 0xcf: {
        const v = this.#scratch(8);
        return v.getUint32(0) * 0x100000000 + v.getUint32(4);
      }
      case 0xd0:
        this.#need(1);
        return (b[this.#p++] << 24) >> 24;
      case 0xd1:
        return (this.#u16() << 16) >> 16;
      case 0xd2:
        return this.#u32() | 0;
      case 0xd3: {
        const v = this.#scratch(8);
        return v.getInt32(0) * 0x100000000 + v.getUint32(4);
      }
      case 0xd9:
        this.#need(1);
        return this.#string(b[this.#p++]);
      case 0xda:
        return this.#string(this.#u16());
      case 0xdb:
        return this.#string(this.#u32());
      case 0xdc:
        return this.#array(this.#u16(), depth);
      case 0xdd:
        return this.#array(this.#u32(), depth);
      case 0xde:
        return this.#map(this.#u16(), depth);
      case 0xdf:
        return this.#map(this.#u32(), depth);
      case 0xc4:
        this.#need(1);
        return this.#view(b[this.#p++]);
      case 0xc5:
        return this.#view(this.#u16());
      case 0xc6:
        return this.#view(this.#u32());
      case 0xd4:
        return this.#extension(1);
      case 0xd5:
        return this.#extension(2);
      case 0xd6:
        return this.#extension(4);
      case 0xd7:
        return this.#extension(8);
      case 0xd8:
        return this.#extension(16);
      case 0xc7:
        this.#need(1);
        return this.#extension(b[this.#p++]);
      case 0xc8:
        return this.#extension(this.#u16());
      case 0xc9:
        return this.#extension(this.#u32());
    }
    throw new DecodeError(`Unrecognized type byte: 0x${t.toString(16).padStart(2, "0")}`);
  }

  #string(n: number): string {
    const b = this.#b;
    const start = this.#p;
    if (start + n > this.#end) throw new RangeError(MORE_DATA);
    this.#p = start + n;
    if (n <= SHORT) {
      let s = "";
      let i = start;
      for (; i < start + n; i++) {
        const c = b[i];
        if (c > 0x7f) break;
        s += String.fromCharCode(c);
      }
      if (i === start + n) return s;
    } else if (n <= ASCII_SLICE && latin1Slice !== undefined) {
      let i = start;
      const end = start + n;
      while (i < end && b[i] < 0x80) i++;
      if (i === end) return latin1Slice(b, start, end);
    }
    return utf8Decoder.decode(new Uint8Array(b.buffer, b.byteOffset + start, n));
  }

  // A short fixstr map key, its header byte not yet consumed.
  #key(n: number): string {
    const b = this.#b;
    const start = this.#p + 1;
    if (start + n > this.#end) throw new RangeError(MORE_DATA);
    let h = n;
    for (let i = start; i < start + n; i++) h = Math.imul(h ^ b[i], 0x01000193);
    const slot = (h ^ (h >>> 15)) & (KEY_SLOTS - 1);
    const cached = keyBytes[slot];
    if (cached !== undefined && cached.length === n) {
      let i = 0;
      while (i < n && cached[i] === b[start + i]) i++;
      if (i === n) {
        this.#p = start + n;
        return keyStrings[slot];
      }
    }
    this.#p = start;
    const s = this.#string(n);
    keyBytes[slot] = b.slice(start, start + n);
    keyStrings[slot] = s;
    return s;
  }

  #view(n: number): Uint8Array {
    const b = this.#b;
    const start = this.#p;
    if (start + n > this.#end) throw new RangeError(MORE_DATA);
    this.#p = start + n;
    const view = new Uint8Array(b.buffer, b.byteOffset + start, n);
    return this.#copy === undefined ? view : this.#copy(view);
  }

  #extension(n: number): unknown {
    this.#need(1);
    const type = (this.#b[this.#p++] << 24) >> 24;
    return EXT.decode(this.#view(n), type, undefined);
  }

  // A container of `n` items of at least `bytesEach` bytes at `depth`: refused when nested too
  // deep, or when the rest of the input cannot hold it (a header alone cannot make it allocate).
  #container(n: number, bytesEach: number, depth: number): void {
    if (depth >= MAX_DECODE_DEPTH) throw new RangeError(`nesting deeper than ${MAX_DECODE_DEPTH}`);
    if (n * bytesEach > this.#end - this.#p) throw new RangeError(MORE_DATA);
  }

  #array(n: number, depth: number): unknown[] {
    this.#container(n, 1, depth);
    const a = new Array(n);
    for (let i = 0; i < n; i++) a[i] = this.#value(depth + 1);
    return a;
  }

  #map(n: number, depth: number): Record<string, unknown> {
    this.#container(n, 2, depth);
    const m: Record<string, unknown> = {};
    const b = this.#b;
    for (let i = 0; i < n; i++) {
      const t = b[this.#p];
      const k = t >= 0xa0 && t <= 0xa0 + SHORT ? this.#key(t - 0xa0) : this.#value(depth + 1);
      if (k === "__proto__") throw new DecodeError("The key __proto__ is not allowed");
      if (typeof k !== "string" && typeof k !== "number") {
        throw new DecodeError(`The type of key must be string or number but ${typeof k}`);
      }
      m[k] = this.#value(depth + 1);
    }
    return m;
  }
}
