/**
 * Application broadcasts: a user payload piggybacked on gossip in the room membership traffic
 * leaves, re-gossiped by every member that receives it (epidemic, transmit-limited like
 * membership news) and delivered once per member. Best effort, like all gossip.
 *
 * @module
 */
import { RpcError } from "../errors.ts";
import { BroadcastQueue } from "./broadcast_queue.ts";
import { encodeMessage, type UserMessage } from "./codec.ts";
import { utf8Length } from "./config.ts";

/** User broadcast ids remembered, so each is delivered and re-gossiped once. */
const SEEN_IDS = 1024;
/** User broadcasts queued at most (the oldest are pruned). */
const QUEUE_LIMIT = 256;

/** The user broadcasts of one node: its own, and those it passes on. */
export class UserBroadcasts {
  readonly #localId: string;
  readonly #deliver: ((payload: Uint8Array, from: string) => void) | undefined;
  #seq = 0;
  readonly #seen = new Set<string>();
  readonly #seenOrder: string[] = [];
  /** The queue the envelope piggybacks from. */
  readonly queue: BroadcastQueue;
  /** Errors thrown by the delivery callback (caught). */
  handlerErrors = 0;

  /**
   * @param liveCount live members now (the retransmit limit grows with it)
   * @param deliver the `onUserMessage` option
   */
  constructor(
    localId: string,
    retransmitMult: number,
    liveCount: () => number,
    deliver: ((payload: Uint8Array, from: string) => void) | undefined,
  ) {
    this.#localId = localId;
    this.#deliver = deliver;
    this.queue = new BroadcastQueue(retransmitMult, liveCount, QUEUE_LIMIT);
  }

  /**
   * Queues `payload` from this node; `maxBody` is the room for messages in one datagram.
   *
   * @throws {RpcError} `invalid_argument` when it is not bytes or cannot fit in one datagram.
   */
  broadcast(payload: Uint8Array, maxBody: number): void {
    if (!(payload instanceof Uint8Array)) {
      throw new RpcError("invalid_argument", "broadcast(): payload must be a Uint8Array");
    }
    const max = maxBody - 64 - 8 - utf8Length(this.#localId);
    if (payload.length + 3 > max) {
      throw new RpcError(
        "invalid_argument",
        `broadcast(): payload of ${payload.length} bytes exceeds the ${max - 3}-byte limit`,
      );
    }
    this.#seq = (this.#seq + 1) >>> 0;
    const m: UserMessage = {
      type: "user",
      origin: this.#localId,
      seq: this.#seq,
      payload: payload.slice(),
    };
    const key = `${m.origin}\u0000${m.seq}`;
    this.#markSeen(key);
    this.queue.queue(key, encodeMessage(m));
  }

  /** A user broadcast arrived from `from`: delivered once, then re-gossiped. */
  receive(m: UserMessage, from: string): void {
    const key = `${m.origin}\u0000${m.seq}`;
    if (m.origin === this.#localId || this.#seen.has(key)) return;
    this.#markSeen(key);
    this.queue.queue(key, encodeMessage(m));
    try {
      this.#deliver?.(m.payload, from);
    } catch {
      this.handlerErrors++;
    }
  }

  #markSeen(key: string): void {
    this.#seen.add(key);
    this.#seenOrder.push(key);
    if (this.#seenOrder.length > SEEN_IDS) this.#seen.delete(this.#seenOrder.shift()!);
  }
}
