/**
 * Faster MessagePack strings for the payload codec: `@msgpack/msgpack` 3.1 counts every string's
 * UTF-8 length in a JavaScript loop before encoding it, and decodes strings up to 200 bytes in a
 * JavaScript loop that pushes one array element per character. In Deno the native `TextEncoder`
 * and `TextDecoder` win from about 24 bytes (`deno task bench codec`: a 64-byte string's encode +
 * decode 1.6 × as fast, a 300-byte one 1.9 ×), and strings were the largest part of a small
 * call's codec time in the caller's CPU profile.
 *
 * The library has no public hook for this, so {@linkcode installFastStrings} replaces the
 * string methods on one encoder and one decoder instance. It only does so after checking that
 * the instances have the internals it relies on and that the patched pair encodes a set of probe
 * strings to the very bytes the unpatched library does and decodes them back: a library upgrade
 * that changes those internals leaves the library's own code in place instead of corrupting
 * payloads.
 *
 * Decoding also becomes uniform: invalid UTF-8 turns into U+FFFD at every length (the library's
 * loop produced stray code units below 201 bytes), and a leading U+FEFF is kept at every length
 * (the library's `TextDecoder` dropped it above 200 bytes).
 *
 * @module
 */
import { Decoder, Encoder } from "@msgpack/msgpack";

/** The encoder internals the fast path uses (private in the library's types). */
interface EncoderInternals {
  pos: number;
  bytes: Uint8Array;
  ensureBufferSizeToWrite(size: number): void;
  writeStringHeader(byteLength: number): void;
  encodeString(s: string): void;
}

/** The decoder internals the fast path uses (private in the library's types). */
interface DecoderInternals {
  pos: number;
  bytes: Uint8Array;
  maxStrLength: number;
  stateIsMapKey(): boolean;
  decodeUtf8String(byteLength: number, headerOffset: number): string;
}

const utf8Encoder = new TextEncoder();
// ignoreBOM: a string that starts with U+FEFF keeps it.
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });

// Below this many characters (or bytes) a JavaScript loop beats a call into the runtime.
const SHORT = 16;
// Above this many characters the library's exact count is kept: reserving 3 bytes per character
// would grow the shared encode buffer to three times the largest string sent.
const LONG = 16 * 1024;

function headerSize(byteLength: number): number {
  return byteLength < 32 ? 1 : byteLength < 0x100 ? 2 : byteLength < 0x10000 ? 3 : 5;
}

function encodeString(this: EncoderInternals, s: string, original: (s: string) => void): void {
  const n = s.length;
  if (n > LONG) return original.call(this, s);
  if (n <= SHORT) {
    // ASCII in one pass: the byte length is the length.
    this.ensureBufferSizeToWrite(1 + n);
    const bytes = this.bytes;
    const at = this.pos + 1;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      bytes[at + i] = c;
    }
    if (i === n) {
      this.writeStringHeader(n);
      this.pos += n;
      return;
    }
  }
  // Encode after room for the largest header the string could need, then move the bytes back
  // when the real length needs a smaller one.
  const reserved = headerSize(n * 3);
  this.ensureBufferSizeToWrite(reserved + n * 3);
  const start = this.pos;
  // A view by constructor: subarray() goes through the species lookup and is slower.
  const bytes = this.bytes;
  const into = new Uint8Array(bytes.buffer, bytes.byteOffset + start + reserved, n * 3);
  const { written } = utf8Encoder.encodeInto(s, into);
  const header = headerSize(written);
  if (header !== reserved) {
    bytes.copyWithin(start + header, start + reserved, start + reserved + written);
  }
  this.writeStringHeader(written);
  this.pos += written;
}

function decodeUtf8String(
  this: DecoderInternals,
  byteLength: number,
  headerOffset: number,
  original: (byteLength: number, headerOffset: number) => string,
): string {
  const start = this.pos + headerOffset;
  // Limits, truncation and map keys (the library caches those) stay with the library.
  if (
    byteLength > this.maxStrLength || this.bytes.byteLength < start + byteLength ||
    this.stateIsMapKey()
  ) {
    return original.call(this, byteLength, headerOffset);
  }
  const bytes = this.bytes;
  let s: string | undefined;
  if (byteLength <= SHORT) {
    s = "";
    for (let i = start; i < start + byteLength; i++) {
      const b = bytes[i];
      if (b > 0x7f) {
        s = undefined;
        break;
      }
      s += String.fromCharCode(b);
    }
  }
  s ??= utf8Decoder.decode(new Uint8Array(bytes.buffer, bytes.byteOffset + start, byteLength));
  this.pos += headerOffset + byteLength;
  return s;
}

// Probe strings for the install check: every header size the fast paths choose between, ASCII
// and not, short and long, a leading U+FEFF.
const PROBES: unknown[] = [
  "",
  "a",
  "abc",
  "é",
  "x".repeat(16),
  "x".repeat(17),
  "x".repeat(31),
  "x".repeat(32),
  "ж".repeat(15),
  "ж".repeat(16),
  "\u{1F600}".repeat(9),
  "\uFEFFbom at the start of a longer string",
  "y".repeat(255),
  "y".repeat(256),
  "€".repeat(90),
  "z".repeat(70_000),
  { key: "value", nested: ["a", "ü".repeat(40), { k: "x".repeat(300) }] },
];

/** Whether the probe check passed in this process (undefined: not run yet). */
let verified: boolean | undefined;

/** Replaces the two string methods of one pair, when the internals they use are there. */
function patch(enc: Encoder, dec: Decoder): boolean {
  const e = enc as unknown as EncoderInternals;
  const d = dec as unknown as DecoderInternals;
  if (
    typeof e.encodeString !== "function" || typeof e.writeStringHeader !== "function" ||
    typeof e.ensureBufferSizeToWrite !== "function" || typeof d.decodeUtf8String !== "function" ||
    typeof d.stateIsMapKey !== "function" || typeof d.maxStrLength !== "number"
  ) {
    return false;
  }
  const originalEncode = e.encodeString;
  const originalDecode = d.decodeUtf8String;
  e.encodeString = function (this: EncoderInternals, s: string) {
    encodeString.call(this, s, originalEncode);
  };
  d.decodeUtf8String = function (this: DecoderInternals, n: number, h: number) {
    return decodeUtf8String.call(this, n, h, originalDecode);
  };
  return true;
}

/** Whether a patched pair of its own reproduces the library's bytes and values for the probes. */
function verify(): boolean {
  const enc = new Encoder();
  const dec = new Decoder();
  if (!patch(enc, dec)) return false;
  const reference = new Encoder();
  const check = new Decoder();
  try {
    for (const probe of PROBES) {
      const want = reference.encode(probe);
      const got = enc.encode(probe);
      const same = got.length === want.length && got.every((b, i) => b === want[i]);
      if (!same || JSON.stringify(dec.decode(want)) !== JSON.stringify(check.decode(want))) {
        return false;
      }
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Replaces the string encoding of `enc` and the string decoding of `dec` with the faster paths
 * of this module, when the library's internals are as expected and a patched pair reproduces
 * the library's bytes for the probe values (checked once per process, on a pair of its own).
 *
 * @returns whether the fast paths were installed
 */
export function installFastStrings(enc: Encoder, dec: Decoder): boolean {
  verified ??= verify();
  return verified && patch(enc, dec);
}
