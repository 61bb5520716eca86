/**
 * The gossip envelope: every datagram and every reliable-channel payload starts with the wire
 * header (version, flags, cluster label) and, with a keyring, carries its body sealed with the
 * label as associated data. Outgoing datagrams are filled up with piggybacked broadcasts
 * (membership news first, `userBroadcastReserve` bytes kept for user broadcasts). Everything
 * refused on the way in is dropped and counted here.
 *
 * @module
 */
import { RpcError } from "../errors.ts";
import type { BroadcastQueue } from "./broadcast_queue.ts";
import {
  ByteWriter,
  decodeBody,
  type DecodeResult,
  FLAG_SEALED,
  type GossipMessage,
  headerSize,
  parseHeader,
  WIRE_VERSION,
  writeHeader,
  writeMessage,
} from "./codec.ts";
import type { Keyring } from "./keyring.ts";
import type { Transport } from "./transport.ts";

/** Traffic and drop counters of the envelope. Counters only grow. */
export interface EnvelopeCounters {
  /** Datagrams received. */
  packetsIn: number;
  /** Datagrams sent. */
  packetsOut: number;
  /** Bytes of datagrams received. */
  bytesIn: number;
  /** Bytes of datagrams sent. */
  bytesOut: number;
  /** Datagrams and requests dropped as malformed (bad header, truncated or invalid body). */
  droppedDecode: number;
  /** Datagrams and syncs rejected by authentication (wrong key, missing or unexpected seal). */
  droppedAuth: number;
  /** Datagrams dropped for a different cluster label. */
  droppedLabel: number;
  /** Datagrams dropped for an unknown wire version. */
  droppedVersion: number;
  /** Messages of unknown type skipped. */
  unknownMessages: number;
  /** Sealing, sending or receiving errors caught (never thrown out). */
  handlerErrors: number;
}

/** What the envelope piggybacks on outgoing datagrams. */
export interface PiggybackQueues {
  /** Membership news. */
  readonly membership: BroadcastQueue;
  /** User broadcasts. */
  readonly user: BroadcastQueue;
  /** Bytes per datagram kept for user broadcasts while any are queued. */
  readonly userReserve: number;
}

const textEncoder = new TextEncoder();

/** Header, sealing and piggybacking of one node's gossip traffic. */
export class Envelope {
  readonly #label: Uint8Array;
  readonly #labelText: string;
  readonly #keyring: Keyring | undefined;
  readonly #queues: PiggybackQueues;
  readonly #writer = new ByteWriter(2048);
  #sealOverhead = 0;
  /** The transport datagrams go out on; `undefined` before start and after shutdown. */
  transport: Transport | undefined;
  /** Counters. */
  readonly counters: EnvelopeCounters = {
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    droppedDecode: 0,
    droppedAuth: 0,
    droppedLabel: 0,
    droppedVersion: 0,
    unknownMessages: 0,
    handlerErrors: 0,
  };

  /** @param label the cluster label; @param keyring seals every body when given */
  constructor(label: string, keyring: Keyring | undefined, queues: PiggybackQueues) {
    this.#labelText = label;
    this.#label = textEncoder.encode(label);
    this.#keyring = keyring;
    this.#queues = queues;
  }

  /** Measures what sealing adds to a body (once, before the first datagram). */
  async init(): Promise<void> {
    if (this.#keyring === undefined) return;
    const probe = await this.#keyring.seal(new Uint8Array(0), this.#label);
    this.#sealOverhead = probe.length;
  }

  /** Room for messages in one datagram, after the header and the seal. */
  maxBody(): number {
    const max = this.transport?.maxPacketSize ?? 1400;
    return max - headerSize(this.#label) - this.#sealOverhead;
  }

  /** Sends `messages` (plus piggybacked broadcasts when `piggyback`) to `addr` in one datagram. */
  send(addr: string, messages: readonly GossipMessage[], piggyback = true): void {
    const transport = this.transport;
    if (transport === undefined) return;
    const w = this.#writer;
    w.reset();
    const sealed = this.#keyring !== undefined;
    writeHeader(w, this.#label, sealed ? FLAG_SEALED : 0);
    const bodyStart = w.length;
    for (const m of messages) writeMessage(w, m);
    if (piggyback) {
      const { membership, user, userReserve } = this.#queues;
      const maxBody = this.maxBody();
      let room = maxBody - (w.length - bodyStart);
      const reserve = user.size > 0 ? Math.min(userReserve, room) : 0;
      membership.take(room - reserve, 0, (b) => w.bytes(b));
      room = maxBody - (w.length - bodyStart);
      if (user.size > 0) user.take(room, 0, (b) => w.bytes(b));
    }
    if (w.length === bodyStart) return;
    if (!sealed) {
      this.#transmit(transport, addr, w.toBytes());
      return;
    }
    const header = w.buf.slice(0, bodyStart);
    const body = w.buf.slice(bodyStart, w.length);
    this.#keyring!.seal(body, this.#label).then((s) => {
      const t = this.transport;
      if (t === undefined) return;
      const packet = new Uint8Array(header.length + s.length);
      packet.set(header);
      packet.set(s, header.length);
      this.#transmit(t, addr, packet);
    }, () => {
      this.counters.handlerErrors++;
    });
  }

  /** Adds the header and seals `body` (when a keyring is set) for the reliable channel. */
  async wrap(body: Uint8Array): Promise<Uint8Array> {
    const w = new ByteWriter(headerSize(this.#label));
    const sealed = this.#keyring !== undefined;
    writeHeader(w, this.#label, sealed ? FLAG_SEALED : 0);
    w.bytes(sealed ? await this.#keyring!.seal(body, this.#label) : body);
    return w.toBytes();
  }

  /** Checks the header and opens a sealed payload; `undefined` (counted) when refused. */
  async unwrap(packet: Uint8Array): Promise<Uint8Array | undefined> {
    const h = parseHeader(packet, this.#label);
    if (!h.ok) {
      this.#countHeaderDrop(h.reason);
      return undefined;
    }
    if (this.#keyring === undefined) {
      if (h.sealed) {
        this.counters.droppedAuth++;
        return undefined;
      }
      return packet.subarray(h.bodyOffset);
    }
    if (!h.sealed) {
      this.counters.droppedAuth++;
      return undefined;
    }
    let body: Uint8Array | undefined;
    try {
      body = await this.#keyring.open(packet.subarray(h.bodyOffset), this.#label);
    } catch {
      body = undefined;
    }
    if (body === undefined) this.counters.droppedAuth++;
    return body;
  }

  /**
   * Takes in one datagram: counted, checked, opened and decoded, then handed to `deliver`
   * (synchronously when unsealed) while `running()` holds. Never throws.
   */
  receive(
    data: Uint8Array,
    from: string,
    running: () => boolean,
    deliver: (body: DecodeResult, from: string) => void,
  ): void {
    try {
      this.counters.packetsIn++;
      this.counters.bytesIn += data.length;
      if (!running()) return;
      if (this.#keyring === undefined) {
        const h = parseHeader(data, this.#label);
        if (!h.ok) return this.#countHeaderDrop(h.reason);
        if (h.sealed) {
          this.counters.droppedAuth++;
          return;
        }
        this.#decode(data, h.bodyOffset, from, deliver);
        return;
      }
      this.unwrap(data).then((body) => {
        if (body !== undefined && running()) this.#decode(body, 0, from, deliver);
      }, () => {
        this.counters.handlerErrors++;
      });
    } catch {
      this.counters.handlerErrors++;
    }
  }

  /** The error for a packet {@linkcode unwrap} refused: what differs, and what to do. */
  refusal(packet: Uint8Array, what: string): RpcError {
    const h = parseHeader(packet, this.#label);
    if (!h.ok) {
      if (h.reason === "label") {
        return new RpcError(
          "invalid_argument",
          `${what} carries another cluster label than this node's ${
            JSON.stringify(this.#labelText)
          }: give every node of a cluster the same label`,
        );
      }
      if (h.reason === "version") {
        return new RpcError(
          "invalid_argument",
          `${what} speaks gossip wire version ${packet[0]}, this node ${WIRE_VERSION}`,
        );
      }
      return new RpcError("invalid_argument", `${what} is not the rpcnet gossip protocol`);
    }
    if (this.#keyring === undefined) {
      return new RpcError(
        "unauthenticated",
        `${what} is sealed with a keyring and this node has none: give every node the same keyring`,
      );
    }
    if (!h.sealed) {
      return new RpcError(
        "unauthenticated",
        `${what} is not sealed and this node requires its keyring: give every node the same keyring`,
      );
    }
    return new RpcError(
      "unauthenticated",
      `${what} cannot be opened with this node's keyring (another key): give every node the same keys`,
    );
  }

  #decode(
    data: Uint8Array,
    offset: number,
    from: string,
    deliver: (body: DecodeResult, from: string) => void,
  ): void {
    const decoded = decodeBody(data, offset);
    if (decoded === undefined) {
      this.counters.droppedDecode++;
      return;
    }
    this.counters.unknownMessages += decoded.unknown;
    deliver(decoded, from);
  }

  #transmit(t: Transport, addr: string, packet: Uint8Array): void {
    this.counters.packetsOut++;
    this.counters.bytesOut += packet.length;
    try {
      t.sendPacket(addr, packet);
    } catch {
      this.counters.handlerErrors++;
    }
  }

  #countHeaderDrop(reason: "malformed" | "version" | "label"): void {
    if (reason === "label") this.counters.droppedLabel++;
    else if (reason === "version") this.counters.droppedVersion++;
    else this.counters.droppedDecode++;
  }
}
