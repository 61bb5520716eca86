/**
 * A pre-scan of untrusted MessagePack before it is decoded, so that a payload can only make the
 * decoder allocate in proportion to its own size.
 *
 * `@msgpack/msgpack` preallocates `new Array(n)` for a container that claims `n` elements, before
 * any element is read: three bytes (`dc 3e 80`) buy 16,000 slots, and 43,690 of them nested in a
 * 128 KiB request took a server past V8's heap limit. The decoder's own options cap each
 * container separately (`maxArrayLength`), which does not help: every level of that attack claims
 * the same modest 16,000. So one iterative pass checks the structure first:
 *
 * - every value still owed by open containers needs at least one byte, so the elements claimed
 *   and not yet read may never exceed the bytes left (this alone bounds preallocation by the
 *   payload size);
 * - string, binary and extension lengths fit in the bytes left;
 * - nesting is at most `maxDepth` containers deep;
 * - the payload holds at most `maxElements` array elements plus map entries (each decoded value
 *   costs tens of bytes of heap: 16 MiB of empty maps would be about a gigabyte);
 * - exactly one value, no trailing bytes.
 *
 * The pass touches each header byte once and skips over string and binary bodies, so it costs a
 * small fraction of decoding (measured in the commit that added it).
 *
 * @module
 */

import { RpcError } from "../errors.ts";
import { checkInt } from "../options.ts";
import { DEFAULT_MAX_PAYLOAD_DEPTH, DEFAULT_MAX_PAYLOAD_ELEMENTS } from "./limits.ts";

/** Limits on one decoded payload; see {@linkcode PayloadLimits.check}. */
export interface PayloadLimitOptions {
  /** Containers nested inside each other, at most (default 100). */
  maxPayloadDepth?: number;
  /** Array elements plus map entries in one payload, at most (default 1,000,000). */
  maxPayloadElements?: number;
}

function reject(what: string): never {
  throw new RpcError("invalid_argument", `payload rejected: ${what}`);
}

/** Checks MessagePack bytes against structural limits before they reach the decoder. */
export class PayloadLimits {
  /** Deepest nesting accepted. */
  readonly maxDepth: number;
  /** Most array elements plus map entries accepted. */
  readonly maxElements: number;
  // Reused between checks (synchronous, so never shared by two at once): no allocation per call.
  #stack: number[] = [];

  /**
   * @param options the limits (each checked; defaults when absent)
   * @throws {RpcError} `invalid_argument` naming a bad option
   */
  constructor(options: PayloadLimitOptions = {}) {
    this.maxDepth = checkInt(
      "maxPayloadDepth",
      options.maxPayloadDepth,
      DEFAULT_MAX_PAYLOAD_DEPTH,
      1,
      100_000,
    );
    this.maxElements = checkInt(
      "maxPayloadElements",
      options.maxPayloadElements,
      DEFAULT_MAX_PAYLOAD_ELEMENTS,
      0,
      2 ** 32,
    );
  }

  /**
   * Throws unless `b` (its bytes from `start` to `end`) is exactly one MessagePack value within
   * the limits. Does not check what the decoder checks anyway (map key types, UTF-8).
   *
   * @throws {RpcError} `invalid_argument` saying which limit the bytes break (offsets counted
   *   from `start`)
   */
  check(b: Uint8Array, start = 0, end: number = b.length): void {
    const n = end;
    const maxDepth = this.maxDepth;
    // Per open container, the values it still expects; `owed` is their sum plus `need`.
    const stack = this.#stack;
    let sp = 0;
    let need = 1;
    let owed = 1;
    let elements = 0;
    let o = start;
    for (;;) {
      if (need === 0) {
        if (sp === 0) break;
        need = stack[--sp];
        continue;
      }
      if (o >= n) reject(`truncated: ${owed} more value(s) expected after ${n - start} bytes`);
      need--;
      owed--;
      const t = b[o++];
      // Fixints, nil, booleans: the common one-byte values first.
      if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) continue;
      let count = -1; // container items (a map entry is two)
      let skip = 0; // body bytes after the header
      if (t < 0x90) count = (t & 0x0f) * 2;
      else if (t < 0xa0) count = t & 0x0f;
      else if (t < 0xc0) skip = t & 0x1f;
      else {
        const left = n - o;
        switch (t) {
          case 0xc4: // bin 8
          case 0xd9: // str 8
            if (left < 1) reject("truncated length");
            skip = 1 + b[o];
            break;
          case 0xc5: // bin 16
          case 0xda: // str 16
            if (left < 2) reject("truncated length");
            skip = 2 + ((b[o] << 8) | b[o + 1]);
            break;
          case 0xc6: // bin 32
          case 0xdb: // str 32
            if (left < 4) reject("truncated length");
            skip = 4 + u32(b, o);
            break;
          case 0xc7: // ext 8: length, type, data
            if (left < 1) reject("truncated length");
            skip = 2 + b[o];
            break;
          case 0xc8: // ext 16
            if (left < 2) reject("truncated length");
            skip = 3 + ((b[o] << 8) | b[o + 1]);
            break;
          case 0xc9: // ext 32
            if (left < 4) reject("truncated length");
            skip = 5 + u32(b, o);
            break;
          case 0xca: // float 32
          case 0xce: // uint 32
          case 0xd2: // int 32
            skip = 4;
            break;
          case 0xcb: // float 64
          case 0xcf: // uint 64
          case 0xd3: // int 64
            skip = 8;
            break;
          case 0xcc: // uint 8
          case 0xd0: // int 8
            skip = 1;
            break;
          case 0xcd: // uint 16
          case 0xd1: // int 16
            skip = 2;
            break;
          case 0xd4: // fixext 1, 2, 4, 8, 16 (type byte + data)
            skip = 2;
            break;
          case 0xd5:
            skip = 3;
            break;
          case 0xd6:
            skip = 5;
            break;
          case 0xd7:
            skip = 9;
            break;
          case 0xd8:
            skip = 17;
            break;
          case 0xdc: // array 16
            if (left < 2) reject("truncated length");
            count = (b[o] << 8) | b[o + 1];
            o += 2;
            break;
          case 0xdd: // array 32
            if (left < 4) reject("truncated length");
            count = u32(b, o);
            o += 4;
            break;
          case 0xde: // map 16
            if (left < 2) reject("truncated length");
            count = ((b[o] << 8) | b[o + 1]) * 2;
            o += 2;
            break;
          case 0xdf: // map 32
            if (left < 4) reject("truncated length");
            count = u32(b, o) * 2;
            o += 4;
            break;
          default: // 0xc1, never used
            reject(`byte 0x${t.toString(16)} at offset ${o - 1 - start} is not MessagePack`);
        }
      }
      if (count < 0) {
        if (skip > n - o) {
          reject(`a ${skip}-byte value at offset ${o - 1 - start} runs past the end`);
        }
        o += skip;
        continue;
      }
      if (count === 0) continue;
      owed += count;
      if (owed > n - o) {
        reject(`containers claim ${owed} more values than the ${n - o} bytes left can hold`);
      }
      elements += t < 0x90 || t === 0xde || t === 0xdf ? count / 2 : count;
      if (elements > this.maxElements) {
        reject(`more than maxPayloadElements (${this.maxElements}) array elements and map entries`);
      }
      if (sp >= maxDepth) reject(`nested deeper than maxPayloadDepth (${maxDepth})`);
      stack[sp++] = need;
      need = count;
    }
    if (o !== n) reject(`${n - o} trailing byte(s) after the value`);
  }
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
