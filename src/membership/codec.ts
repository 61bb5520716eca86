/**
 * The gossip wire format: a compact binary encoding of SWIM's messages.
 *
 * Datagram: `[u8 version=1][u8 flags][u8 label length][label][body]`. Flag bit 0 means the body
 * is sealed by the keyring (label as associated data). A body is a compound of messages, each
 * `[u8 type][u16 length][payload]`, so one datagram carries a ping or ack plus piggybacked
 * broadcasts. Strings are `[u8 length][utf-8]`, integers big-endian. A push-pull (full state)
 * exchange uses the same header and a single `push-pull` message without the 64 KiB limit.
 *
 * Decoding never throws out: {@linkcode decodeBody} returns `undefined` for malformed input so the
 * receive loop can count and drop it.
 *
 * @module
 */
import type { MemberState, Tags } from "./types.ts";

/** Wire version written in every packet's first byte. */
export const WIRE_VERSION = 1;
/** Header flag: the body is sealed by the keyring. */
export const FLAG_SEALED = 1;

/** Message type numbers on the wire. */
export const MessageType = {
  ping: 1,
  ack: 2,
  nack: 3,
  pingReq: 4,
  suspect: 5,
  alive: 6,
  dead: 7,
  leave: 8,
  user: 9,
  pushPull: 10,
} as const;

/** Direct probe; `target` empty for monitor heartbeats (any receiver answers). */
export interface PingMessage {
  /** Discriminant. */
  readonly type: "ping";
  /** Sequence number echoed by the ack. */
  readonly seq: number;
  /** Id of the member the sender means to reach; a different receiver ignores the ping. */
  readonly target: string;
}

/** Answer to a ping (or forwarded answer of an indirect ping). */
export interface AckMessage {
  /** Discriminant. */
  readonly type: "ack";
  /** Sequence number of the ping answered. */
  readonly seq: number;
}

/** An intermediary's word that it got no ack from the target of a ping-req in time. */
export interface NackMessage {
  /** Discriminant. */
  readonly type: "nack";
  /** Sequence number of the ping-req. */
  readonly seq: number;
}

/** Asks the receiver to ping `target` on the sender's behalf and forward the ack. */
export interface PingReqMessage {
  /** Discriminant. */
  readonly type: "ping-req";
  /** Sequence number the forwarded ack (or nack) carries. */
  readonly seq: number;
  /** Id of the member to ping. */
  readonly target: string;
  /** Gossip address of the member to ping. */
  readonly targetAddr: string;
  /** Whether the sender wants a nack when the target does not answer. */
  readonly nack: boolean;
}

/** `from` suspects `node` at `incarnation`. */
export interface SuspectMessage {
  /** Discriminant. */
  readonly type: "suspect";
  /** Suspected member. */
  readonly node: string;
  /** Incarnation the suspicion is about. */
  readonly incarnation: number;
  /** Member that suspects it. */
  readonly from: string;
}

/** `node` is alive at `incarnation` with this record. */
export interface AliveMessage {
  /** Discriminant. */
  readonly type: "alive";
  /** Member id. */
  readonly node: string;
  /** Its incarnation. */
  readonly incarnation: number;
  /** Its gossip address. */
  readonly gossipAddr: string;
  /** Its RPC address. */
  readonly rpcAddr: string;
  /** Its tags. */
  readonly tags: Tags;
}

/** The alive message announcing `node` with what a record (or a sync record) holds of it. */
export function aliveMessage(
  node: string,
  r: {
    readonly incarnation: number;
    readonly gossipAddr: string;
    readonly rpcAddr: string;
    readonly tags: Tags;
  },
): AliveMessage {
  return {
    type: "alive",
    node,
    incarnation: r.incarnation,
    gossipAddr: r.gossipAddr,
    rpcAddr: r.rpcAddr,
    tags: r.tags,
  };
}

/** `from` declares `node` dead at `incarnation`. */
export interface DeadMessage {
  /** Discriminant. */
  readonly type: "dead";
  /** Dead member. */
  readonly node: string;
  /** Incarnation it died at. */
  readonly incarnation: number;
  /** Member that declared it. */
  readonly from: string;
}

/** `node` leaves the cluster gracefully (sent by the node itself). */
export interface LeaveMessage {
  /** Discriminant. */
  readonly type: "leave";
  /** Leaving member. */
  readonly node: string;
  /** Its incarnation. */
  readonly incarnation: number;
}

/** An application broadcast piggybacked on gossip. */
export interface UserMessage {
  /** Discriminant. */
  readonly type: "user";
  /** Id of the member that broadcast it. */
  readonly origin: string;
  /** The origin's sequence number: with `origin`, identifies the broadcast for de-duplication. */
  readonly seq: number;
  /** Opaque bytes. */
  readonly payload: Uint8Array;
}

/** Every message a datagram body can carry. */
export type GossipMessage =
  | PingMessage
  | AckMessage
  | NackMessage
  | PingReqMessage
  | SuspectMessage
  | AliveMessage
  | DeadMessage
  | LeaveMessage
  | UserMessage;

/** One member's record inside a push-pull exchange. */
export interface PushPullRecord {
  /** Member id. */
  readonly node: string;
  /** Gossip address. */
  readonly gossipAddr: string;
  /** RPC address. */
  readonly rpcAddr: string;
  /** Incarnation. */
  readonly incarnation: number;
  /** State as the sender knows it. */
  readonly state: MemberState;
  /** Tags. */
  readonly tags: Tags;
}

/** A full-state exchange (anti-entropy, join). */
export interface PushPullMessage {
  /** Discriminant. */
  readonly type: "push-pull";
  /** Set by a joining node. */
  readonly join: boolean;
  /** Every member the sender knows, tombstones included. */
  readonly records: PushPullRecord[];
}

/** Member states by wire code (also the member table's compact state field). */
export const STATE_CODES: readonly MemberState[] = ["alive", "suspect", "dead", "left"];
/** Wire code of each member state. */
export const STATE_NUMBERS: Readonly<Record<MemberState, number>> = {
  alive: 0,
  suspect: 1,
  dead: 2,
  left: 3,
};

const textEncoder = new TextEncoder();
// ignoreBOM: a string that starts with U+FEFF keeps it (found by the fuzz target).
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const EMPTY_TAGS: Tags = Object.freeze({});

/** A growable byte buffer writer; reuse one with {@linkcode ByteWriter.reset} to avoid garbage. */
export class ByteWriter {
  /** Underlying storage (valid up to {@linkcode ByteWriter.length}). */
  buf: Uint8Array;
  #view: DataView;
  /** Bytes written. */
  length = 0;

  /** @param capacity initial capacity in bytes */
  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
    this.#view = new DataView(this.buf.buffer);
  }

  /** Forgets the contents, keeping the storage. */
  reset(): void {
    this.length = 0;
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.length + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Appends one byte. */
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v;
  }

  /** Appends a big-endian u16. */
  u16(v: number): void {
    this.ensure(2);
    this.#view.setUint16(this.length, v);
    this.length += 2;
  }

  /** Writes a big-endian u16 at `at` (for back-patched lengths). */
  patchU16(at: number, v: number): void {
    this.#view.setUint16(at, v);
  }

  /** Appends a big-endian u32. */
  u32(v: number): void {
    this.ensure(4);
    this.#view.setUint32(this.length, v >>> 0);
    this.length += 4;
  }

  /** Appends raw bytes. */
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** Appends `[u8 length][utf-8]`; throws RangeError past 255 bytes (callers validate first). */
  str8(s: string): void {
    this.ensure(1 + s.length * 3);
    const start = this.length + 1;
    const { written } = textEncoder.encodeInto(s, this.buf.subarray(start));
    if (written > 255) throw new RangeError("string longer than 255 bytes");
    this.buf[this.length] = written;
    this.length = start + written;
  }

  /** A copy of the written bytes. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Thrown (internally) for malformed input; never escapes {@linkcode decodeBody}. */
class Malformed extends Error {}

/** A bounds-checked reader over one packet. */
class ByteReader {
  readonly #b: Uint8Array;
  readonly #view: DataView;
  pos: number;
  readonly end: number;

  constructor(b: Uint8Array, pos: number, end: number) {
    this.#b = b;
    this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.pos = pos;
    this.end = end;
  }

  need(n: number): void {
    if (this.pos + n > this.end) throw new Malformed("truncated");
  }

  u8(): number {
    this.need(1);
    return this.#b[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = this.#view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.#view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  str8(): string {
    const n = this.u8();
    if (n === 0) return "";
    this.need(n);
    // Ids and addresses are short ASCII: building them in JS avoids a TextDecoder call per
    // string (the simulator's hottest path); anything else goes through the strict decoder.
    const b = this.#b;
    const start = this.pos;
    const end = start + n;
    let i = start;
    while (i < end && b[i] < 0x80) i++;
    const bytes = b.subarray(start, end);
    const s = i === end
      ? String.fromCharCode.apply(null, bytes as unknown as number[])
      : textDecoder.decode(bytes);
    this.pos += n;
    return s;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.#b.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/** Encoded size of tags: `[u8 count]` then `[str8 key][str8 value]` per entry. */
export function tagsEncodedSize(tags: Tags): number {
  let size = 1;
  let count = 0;
  for (const [k, v] of Object.entries(tags)) {
    size += 2 + textEncoder.encode(k).length + textEncoder.encode(v).length;
    count++;
  }
  return count > 255 ? Infinity : size;
}

function writeTags(w: ByteWriter, tags: Tags): void {
  const keys = Object.keys(tags);
  w.u8(keys.length);
  for (const k of keys) {
    w.str8(k);
    w.str8(tags[k]);
  }
}

function readTags(r: ByteReader): Tags {
  const n = r.u8();
  if (n === 0) return EMPTY_TAGS;
  const tags: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const k = r.str8();
    if (k === "__proto__") throw new Malformed("bad tag key");
    tags[k] = r.str8();
  }
  return Object.freeze(tags);
}

/** Writes a packet header: version, flags, label. */
export function writeHeader(w: ByteWriter, label: Uint8Array, flags: number): void {
  w.u8(WIRE_VERSION);
  w.u8(flags);
  w.u8(label.length);
  w.bytes(label);
}

/** Bytes a header with `label` takes. */
export function headerSize(label: Uint8Array): number {
  return 3 + label.length;
}

/** Result of {@linkcode parseHeader}: where the body starts, or why the packet is refused. */
export type HeaderResult =
  | { readonly ok: true; readonly sealed: boolean; readonly bodyOffset: number }
  | { readonly ok: false; readonly reason: "malformed" | "version" | "label" };

/** Checks a packet's version and label against ours. */
export function parseHeader(data: Uint8Array, label: Uint8Array): HeaderResult {
  if (data.length < 3) return { ok: false, reason: "malformed" };
  if (data[0] !== WIRE_VERSION) return { ok: false, reason: "version" };
  const flags = data[1];
  if ((flags & ~FLAG_SEALED) !== 0) return { ok: false, reason: "malformed" };
  const n = data[2];
  if (data.length < 3 + n) return { ok: false, reason: "malformed" };
  if (n !== label.length) return { ok: false, reason: "label" };
  for (let i = 0; i < n; i++) if (data[3 + i] !== label[i]) return { ok: false, reason: "label" };
  return { ok: true, sealed: (flags & FLAG_SEALED) !== 0, bodyOffset: 3 + n };
}

/**
 * Appends one message as `[u8 type][u16 length][payload]`. Returns false (writing nothing) when
 * the message would exceed 65535 bytes.
 */
export function writeMessage(w: ByteWriter, m: GossipMessage): boolean {
  const start = w.length;
  w.u8(typeNumber(m));
  const lenAt = w.length;
  w.u16(0);
  switch (m.type) {
    case "ping":
      w.u32(m.seq);
      w.str8(m.target);
      break;
    case "ack":
    case "nack":
      w.u32(m.seq);
      break;
    case "ping-req":
      w.u32(m.seq);
      w.str8(m.target);
      w.str8(m.targetAddr);
      w.u8(m.nack ? 1 : 0);
      break;
    case "suspect":
    case "dead":
      w.u32(m.incarnation);
      w.str8(m.node);
      w.str8(m.from);
      break;
    case "alive":
      w.u32(m.incarnation);
      w.str8(m.node);
      w.str8(m.gossipAddr);
      w.str8(m.rpcAddr);
      writeTags(w, m.tags);
      break;
    case "leave":
      w.u32(m.incarnation);
      w.str8(m.node);
      break;
    case "user":
      w.str8(m.origin);
      w.u32(m.seq);
      w.bytes(m.payload);
      break;
  }
  const len = w.length - lenAt - 2;
  if (len > 0xffff) {
    w.length = start;
    return false;
  }
  w.patchU16(lenAt, len);
  return true;
}

function typeNumber(m: GossipMessage): number {
  switch (m.type) {
    case "ping":
      return MessageType.ping;
    case "ack":
      return MessageType.ack;
    case "nack":
      return MessageType.nack;
    case "ping-req":
      return MessageType.pingReq;
    case "suspect":
      return MessageType.suspect;
    case "alive":
      return MessageType.alive;
    case "dead":
      return MessageType.dead;
    case "leave":
      return MessageType.leave;
    case "user":
      return MessageType.user;
  }
}

/** Encodes one message standalone (as stored in the broadcast queue). */
export function encodeMessage(m: GossipMessage): Uint8Array {
  const w = new ByteWriter(64);
  if (!writeMessage(w, m)) throw new RangeError("message exceeds 65535 bytes");
  return w.toBytes();
}

function readMessage(type: number, r: ByteReader): GossipMessage | undefined {
  switch (type) {
    case MessageType.ping:
      return { type: "ping", seq: r.u32(), target: r.str8() };
    case MessageType.ack:
      return { type: "ack", seq: r.u32() };
    case MessageType.nack:
      return { type: "nack", seq: r.u32() };
    case MessageType.pingReq:
      return {
        type: "ping-req",
        seq: r.u32(),
        target: r.str8(),
        targetAddr: r.str8(),
        nack: r.u8() !== 0,
      };
    case MessageType.suspect: {
      const incarnation = r.u32();
      return { type: "suspect", incarnation, node: r.str8(), from: r.str8() };
    }
    case MessageType.dead: {
      const incarnation = r.u32();
      return { type: "dead", incarnation, node: r.str8(), from: r.str8() };
    }
    case MessageType.alive: {
      const incarnation = r.u32();
      const node = r.str8();
      const gossipAddr = r.str8();
      const rpcAddr = r.str8();
      return { type: "alive", incarnation, node, gossipAddr, rpcAddr, tags: readTags(r) };
    }
    case MessageType.leave: {
      const incarnation = r.u32();
      return { type: "leave", incarnation, node: r.str8() };
    }
    case MessageType.user: {
      const origin = r.str8();
      const seq = r.u32();
      return { type: "user", origin, seq, payload: r.bytes(r.end - r.pos) };
    }
    default:
      return undefined; // unknown type from a newer version: skipped
  }
}

/** Counts from decoding one body. */
export interface DecodeResult {
  /** The messages, in packet order. */
  readonly messages: GossipMessage[];
  /** Messages of unknown type that were skipped. */
  readonly unknown: number;
}

/**
 * Decodes a compound body. Returns `undefined` when anything is malformed (truncated, bad
 * length, invalid UTF-8, empty node id, trailing bytes inside a message).
 */
export function decodeBody(
  data: Uint8Array,
  offset = 0,
  end = data.length,
): DecodeResult | undefined {
  try {
    const messages: GossipMessage[] = [];
    let unknown = 0;
    const r = new ByteReader(data, offset, end);
    if (offset >= end) return undefined;
    while (r.pos < end) {
      const type = r.u8();
      const len = r.u16();
      r.need(len);
      const inner = new ByteReader(data, r.pos, r.pos + len);
      const m = readMessage(type, inner);
      if (m === undefined) unknown++;
      else {
        if (inner.pos !== inner.end) return undefined;
        if ("node" in m && m.node.length === 0) return undefined;
        messages.push(m);
      }
      r.pos += len;
    }
    return { messages, unknown };
  } catch {
    return undefined;
  }
}

/** Encodes a push-pull body (no header): `[u8 type][u8 join][u32 count][records]`. */
export function writePushPull(w: ByteWriter, m: PushPullMessage): void {
  w.u8(MessageType.pushPull);
  w.u8(m.join ? 1 : 0);
  w.u32(m.records.length);
  for (const rec of m.records) {
    w.str8(rec.node);
    w.str8(rec.gossipAddr);
    w.str8(rec.rpcAddr);
    w.u32(rec.incarnation);
    w.u8(STATE_NUMBERS[rec.state]);
    writeTags(w, rec.tags);
  }
}

/** Decodes a push-pull body; `undefined` when malformed. */
export function decodePushPull(
  data: Uint8Array,
  offset = 0,
  maxRecords = 1_000_000,
): PushPullMessage | undefined {
  try {
    const r = new ByteReader(data, offset, data.length);
    if (r.u8() !== MessageType.pushPull) return undefined;
    const join = r.u8() !== 0;
    const count = r.u32();
    // Each record takes at least 9 bytes, so a count the packet cannot hold is malformed.
    if (count > maxRecords || count * 9 > r.end - r.pos) return undefined;
    const records: PushPullRecord[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const node = r.str8();
      if (node.length === 0) return undefined;
      const gossipAddr = r.str8();
      const rpcAddr = r.str8();
      const incarnation = r.u32();
      const state = STATE_CODES[r.u8()];
      if (state === undefined) return undefined;
      records[i] = { node, gossipAddr, rpcAddr, incarnation, state, tags: readTags(r) };
    }
    if (r.pos !== r.end) return undefined;
    return { type: "push-pull", join, records };
  } catch {
    return undefined;
  }
}
