/**
 * Anti-entropy: a periodic full-state exchange with one random member over the transport's
 * reliable channel (push-pull), so members that missed gossip converge anyway. The interval grows
 * with N (memberlist's scaling) to keep the per-node cost flat. Joining uses the same exchange
 * with a seed, and reconnecting to members declared dead (`reconnect.ts`) does too.
 *
 * Merge rules: alive records are applied as alive messages; left is applied as left; a remote
 * suspect or dead verdict about a member we hold alive is checked with a ping of our own first
 * (it also tells the member, which refutes), and only an unanswered check raises a local
 * suspicion. Dead members we never knew are not learnt; tombstones are never resurrected by an
 * older record. Syncs are capped (`maxSyncRecords`) and merged in slices.
 *
 * @module
 */
import { RpcError } from "../errors.ts";
import {
  aliveMessage,
  ByteWriter,
  decodePushPull,
  MessageType,
  type PushPullMessage,
  type PushPullRecord,
  writePushPull,
} from "./codec.ts";
import type { ProtocolHost } from "./protocol_host.ts";

/** Counters of anti-entropy. */
export interface PushPullCounters {
  /** Exchanges this node started that completed. */
  pushPulls: number;
  /** Exchanges this node started that failed. */
  pushPullFailures: number;
  /** Exchanges served for others. */
  pushPullsServed: number;
  /** Syncs refused for carrying more than `maxSyncRecords` records. */
  syncsRefused: number;
}

/** The record count a push-pull body claims, read before decoding anything else. */
function claimedRecords(body: Uint8Array): number {
  if (body.length < 6 || body[0] !== MessageType.pushPull) return 0;
  return new DataView(body.buffer, body.byteOffset + 2, 4).getUint32(0);
}

/** Records merged between two yields to the event loop. */
export const MERGE_SLICE = 512;

/** Push-pull full state sync. */
export class PushPull {
  readonly #host: ProtocolHost;
  readonly #writer = new ByteWriter(1024);
  /** Counters. */
  readonly counters: PushPullCounters = {
    pushPulls: 0,
    pushPullFailures: 0,
    pushPullsServed: 0,
    syncsRefused: 0,
  };

  /** @param host protocol host */
  constructor(host: ProtocolHost) {
    this.#host = host;
  }

  /** The local state as a push-pull body. */
  encodeState(join: boolean): Uint8Array {
    const records: PushPullRecord[] = [];
    for (const r of this.#host.table.values()) {
      records.push({
        node: r.id,
        gossipAddr: r.gossipAddr,
        rpcAddr: r.rpcAddr,
        incarnation: r.incarnation,
        state: r.state,
        tags: r.tags,
      });
    }
    const msg: PushPullMessage = { type: "push-pull", join, records };
    const w = this.#writer;
    w.reset();
    writePushPull(w, msg);
    return w.toBytes();
  }

  /**
   * Merges a remote state into ours, yielding to the event loop every {@linkcode MERGE_SLICE}
   * records so a large sync cannot stall probes and acks. `announce` re-gossips members new to
   * us (a seed serving a join announces the joiner, whose own gossip would otherwise reach only
   * nodes that already learnt it from the seed).
   */
  async merge(m: PushPullMessage, announce = false): Promise<void> {
    const host = this.#host;
    const records = m.records;
    for (let i = 0; i < records.length; i++) {
      if (i > 0 && i % MERGE_SLICE === 0) await host.yieldNow();
      if (!host.running) return;
      const r = records[i];
      switch (r.state) {
        case "alive":
          host.handleAlive(aliveMessage(r.node, r), !announce);
          break;
        case "left":
          host.handleDead({ type: "leave", node: r.node, incarnation: r.incarnation });
          break;
        default:
          // Suspect or dead elsewhere: refuted when it is us; checked by ourselves before any
          // suspicion when we hold the member alive (see `verifyVerdict`).
          host.verifyVerdict({
            type: "suspect",
            node: r.node,
            incarnation: r.incarnation,
            from: host.table.localId,
          });
      }
    }
  }

  /** Serves an incoming exchange (its unwrapped body): merges the remote state, replies with ours. */
  async handleBody(body: Uint8Array): Promise<Uint8Array> {
    this.#checkSize(body, "request");
    const m = decodePushPull(body, 0, this.#host.config.maxSyncRecords);
    if (m === undefined) throw new RpcError("invalid_argument", "malformed push-pull");
    this.counters.pushPullsServed++;
    // Merge first: the reply then already carries our refutation of anything the peer believed
    // about us (e.g. that we died while a partition separated us), which heals partitions faster.
    await this.merge(m, m.join);
    return await this.#host.wrap(this.encodeState(false));
  }

  /**
   * One exchange with `addr`; resolves with the peer's state (already merged). Rejects with
   * `RpcError` when the peer cannot be reached (`unavailable`, `deadline_exceeded`), refuses us
   * (`unauthenticated`: keys; `invalid_argument`: another label or protocol) or answers garbage.
   */
  async exchange(
    addr: string,
    join: boolean,
    timeoutMs: number,
    announce = false,
  ): Promise<PushPullMessage> {
    const req = await this.#host.wrap(this.encodeState(join));
    let reply: Uint8Array;
    try {
      reply = await this.#host.request(addr, req, timeoutMs);
    } catch (e) {
      this.counters.pushPullFailures++;
      throw e instanceof RpcError ? e : new RpcError("unavailable", String(e), { cause: e });
    }
    const body = await this.#host.unwrap(reply);
    if (body === undefined) {
      this.counters.pushPullFailures++;
      throw this.#host.refusal(reply, `push-pull reply from ${addr}`);
    }
    try {
      this.#checkSize(body, `reply from ${addr}`);
    } catch (e) {
      this.counters.pushPullFailures++;
      throw e;
    }
    const m = decodePushPull(body, 0, this.#host.config.maxSyncRecords);
    if (m === undefined) {
      this.counters.pushPullFailures++;
      throw new RpcError(
        "invalid_argument",
        `malformed push-pull reply from ${addr}: not the rpcnet gossip protocol, or another version`,
      );
    }
    this.counters.pushPulls++;
    await this.merge(m, announce);
    return m;
  }

  /**
   * Refuses a sync claiming more than `maxSyncRecords` records before decoding it: one
   * unauthenticated sync must not flood the member table (and, through it, the cluster).
   */
  #checkSize(body: Uint8Array, what: string): void {
    const max = this.#host.config.maxSyncRecords;
    const claimed = claimedRecords(body);
    if (claimed <= max) return;
    this.counters.syncsRefused++;
    throw new RpcError(
      "resource_exhausted",
      `push-pull ${what} carries ${claimed} member records, over maxSyncRecords (${max}); raise maxSyncRecords if the cluster really is that large`,
    );
  }

  /** Picks the peer of the next periodic exchange: a random live member; `undefined` when alone. */
  pickPeer(): string | undefined {
    const host = this.#host;
    const peers = host.table.randomLive(1, host.random);
    return peers[0]?.gossipAddr;
  }
}
