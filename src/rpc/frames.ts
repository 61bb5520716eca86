/**
 * The wire layout shared by lanes and streaming calls.
 *
 * Every frame is `[u32 length][u8 type][u8 flags][u32 id][body]`, big-endian, where `length`
 * counts the bytes after itself (so at least {@linkcode FRAME_FIXED}). A lane carries many
 * unary calls matched by `id`; a streaming call owns its QUIC stream and uses `id` 0. A TCP lane
 * is a lane on a TLS connection instead of a QUIC stream, bound to its QUIC connection by a token.
 *
 * Bodies:
 * - `REQUEST` / `STREAM_OPEN`: `[u8 kind (STREAM_OPEN only)][u8 methodLen][method utf8]`
 *   `[u32 timeoutMs if F_DEADLINE][u16 metaLen][meta msgpack if F_META][payload]`
 * - `RESPONSE` / `MESSAGE`: payload (msgpack, or raw bytes when `F_RAW`)
 * - `ERROR`: `[u8 code index in RPC_ERROR_CODES][message utf8]`
 * - `HELLO` (server → client, control stream): `[u8 authRequired][32-byte nonce]`, then a
 *   32-byte TCP lane token when the server has `tcpLanes` on (65 bytes in all)
 * - `AUTH` (client → server): HMAC-SHA256(secret, nonce || "rpcnet-auth"), or empty
 * - `LANE_OPEN`: empty on a QUIC lane; the token from `HELLO` as the first frame of a TCP lane
 *   (TLS over TCP to the same host and port number), answered by `READY` once it is attached
 * - `CANCEL`, `END`, `READY`, `GOAWAY`: empty (a lane `CANCEL` flagged `F_DEADLINE` was sent
 *   because the caller's deadline passed)
 *
 * @module
 */

/** The ALPN protocol id both sides announce. */
export const RPC_ALPN = "rpcnet/1";

/** Bytes of the length prefix. */
export const LEN_BYTES = 4;
/** Bytes after the length prefix that every frame has: type, flags, id. */
export const FRAME_FIXED = 6;
/** Bytes of a full frame header (length prefix + fixed part). */
export const HEADER_BYTES = LEN_BYTES + FRAME_FIXED;

/** Frame types. */
export const T = {
  REQUEST: 1,
  RESPONSE: 2,
  ERROR: 3,
  CANCEL: 4,
  LANE_OPEN: 5,
  STREAM_OPEN: 6,
  MESSAGE: 7,
  END: 8,
  HELLO: 9,
  AUTH: 10,
  READY: 11,
  GOAWAY: 12,
} as const;

/** The largest valid frame type. */
export const MAX_TYPE = 12;

/** Frame flags. */
export const F = {
  /** The payload is a raw `Uint8Array`, not MessagePack. */
  RAW: 1,
  /** The request carries a relative timeout. */
  DEADLINE: 2,
  /** The request carries metadata. */
  META: 4,
} as const;

/**
 * Kinds of calls: the kind a handler is registered with, and (streaming kinds) the first body
 * byte of `STREAM_OPEN`.
 */
export const KIND = { UNARY: 0, SERVER: 1, CLIENT: 2, BIDI: 3 } as const;

/**
 * QUIC application close codes the package uses. A client that sees `UNAUTHENTICATED` reports
 * `RpcError("unauthenticated")`; every other close reports `unavailable`.
 */
export const RPC_CLOSE_CODES = {
  /** Orderly close by either side. */
  NORMAL: 0,
  /** The peer sent a malformed frame; only this connection is closed. */
  PROTOCOL_ERROR: 0x101,
  /** The cluster secret was wrong or missing. */
  UNAUTHENTICATED: 0x102,
  /** The server is shutting down. */
  GOING_AWAY: 0x103,
} as const;

/** A violation of the wire layout; the connection that produced it is closed. */
export class FrameError extends Error {
  /** @param message what was wrong with the frame */
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 bytes of `s`. */
export function encodeUtf8(s: string): Uint8Array {
  return utf8.encode(s);
}

/** Decodes UTF-8, with a fast path for short ASCII (method names). */
export function decodeUtf8(b: Uint8Array): string {
  if (b.length <= 64) {
    let ascii = true;
    for (let i = 0; i < b.length; i++) if (b[i] > 0x7f) ascii = false;
    if (ascii) return String.fromCharCode.apply(null, b as unknown as number[]);
  }
  try {
    return utf8Decoder.decode(b);
  } catch {
    throw new FrameError("invalid UTF-8");
  }
}

/** Reads a big-endian u32 at `o`. */
export function readU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Writes a big-endian u32 at `o`. */
export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

// Most lanes carry a handful of methods: remember the last few decoded names.
const METHOD_CACHE = 8;
const cachedBytes: Uint8Array[] = [];
const cachedNames: string[] = [];

function methodName(b: Uint8Array, o: number, n: number): string {
  outer: for (let k = 0; k < cachedBytes.length; k++) {
    const c = cachedBytes[k];
    if (c.length !== n) continue;
    for (let i = 0; i < n; i++) if (c[i] !== b[o + i]) continue outer;
    return cachedNames[k];
  }
  const name = decodeUtf8(b.subarray(o, o + n));
  if (cachedBytes.length >= METHOD_CACHE) {
    cachedBytes.shift();
    cachedNames.shift();
  }
  cachedBytes.push(b.slice(o, o + n));
  cachedNames.push(name);
  return name;
}

/** The request header fields parsed from a `REQUEST` or `STREAM_OPEN` body. */
export interface RequestHead {
  /** Method name. */
  method: string;
  /** Relative timeout in ms, when the caller set one. */
  timeoutMs: number | undefined;
  /** Offset and length of the msgpack-encoded metadata in the body (length 0 when absent). */
  metaStart: number;
  /** Length of the metadata bytes. */
  metaLen: number;
  /** Offset of the payload in the body. */
  payloadStart: number;
}

/**
 * Parses the request header from `body` starting at `o` (after the kind byte, if any), into
 * `out` when given (a per-lane scratch record: one allocation less per call). The body ends at
 * `end` (default `body.length`: a frame read in place leaves it inside the reader's buffer);
 * offsets in the result are `body`'s.
 */
export function parseRequestHead(
  body: Uint8Array,
  o: number,
  flags: number,
  out?: RequestHead,
  end: number = body.length,
): RequestHead {
  if (o >= end) throw new FrameError("request frame without method");
  const mlen = body[o++];
  if (mlen === 0 || o + mlen > end) throw new FrameError("bad method length");
  const method = methodName(body, o, mlen);
  o += mlen;
  let timeoutMs: number | undefined;
  if (flags & F.DEADLINE) {
    if (o + 4 > end) throw new FrameError("truncated deadline");
    timeoutMs = readU32(body, o);
    o += 4;
  }
  let metaStart = o, metaLen = 0;
  if (flags & F.META) {
    if (o + 2 > end) throw new FrameError("truncated metadata length");
    metaLen = (body[o] << 8) | body[o + 1];
    metaStart = o + 2;
    o = metaStart + metaLen;
    if (o > end) throw new FrameError("truncated metadata");
  }
  if (!out) return { method, timeoutMs, metaStart, metaLen, payloadStart: o };
  out.method = method;
  out.timeoutMs = timeoutMs;
  out.metaStart = metaStart;
  out.metaLen = metaLen;
  out.payloadStart = o;
  return out;
}
