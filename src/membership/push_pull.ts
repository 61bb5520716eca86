/**
 * Anti-entropy: a periodic full-state exchange with one random member over the transport's
 * reliable channel (push-pull), so members that missed gossip converge anyway. The interval grows
 * with N (memberlist's scaling) to keep the per-node cost flat. Joining uses the same exchange
 * with a seed. Now and then the exchange goes to a dead (not left) tombstone instead, so the two
 * sides of a healed partition find each other and refute their deaths.
 *
 * Merge rules: alive records are applied as alive messages; a remote suspect or dead verdict only
 * raises a local suspicion (we verify before declaring death), and left is applied as left. Dead
 * members we never knew are not learnt; tombstones are never resurrected by an older record.
 *
 * @module
 */
import { RpcError } from "../errors.ts";
import {
  ByteWriter,
  decodePushPull,
  type PushPullMessage,
  type PushPullRecord,
  writePushPull,
} from "./codec.ts";
import type { ProtocolHost } from "./context.ts";

/** Counters of anti-entropy. */
export interface PushPullCounters {
  /** Exchanges this node started that completed. */
  pushPulls: number;
  /** Exchanges this node started that failed. */
  pushPullFailures: number;
  /** Exchanges served for others. */
  pushPullsServed: number;
  /** Reconnection attempts to dead members. */
  reconnectAttempts: number;
}

/** Push-pull full state sync. */
export class PushPull {
  readonly #host: ProtocolHost;
  readonly #writer = new ByteWriter(1024);
  /** Counters. */
  readonly counters: PushPullCounters = {
    pushPulls: 0,
    pushPullFailures: 0,
    pushPullsServed: 0,
    reconnectAttempts: 0,
  };
  #ticks = 0;

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
   * Merges a remote state into ours. `announce` re-gossips members new to us (a seed serving a
   * join announces the joiner, whose own gossip would otherwise reach only nodes that already
   * learnt it from the seed).
   */
  merge(m: PushPullMessage, announce = false): void {
    const host = this.#host;
    for (const r of m.records) {
      if (!host.running) return;
      switch (r.state) {
        case "alive":
          host.handleAlive({
            type: "alive",
            node: r.node,
            incarnation: r.incarnation,
            gossipAddr: r.gossipAddr,
            rpcAddr: r.rpcAddr,
            tags: r.tags,
          }, !announce);
          break;
        case "left":
          host.handleDead({ type: "leave", node: r.node, incarnation: r.incarnation });
          break;
        default:
          // Suspect or dead elsewhere: suspect here, and let our own probes decide.
          host.handleSuspect({
            type: "suspect",
            node: r.node,
            incarnation: r.incarnation,
            from: host.table.localId,
          });
      }
    }
  }

  /** Serves an incoming exchange: merges the remote state and replies with ours. */
  async handleRequest(request: Uint8Array, _from: string): Promise<Uint8Array> {
    const body = await this.#host.unwrap(request);
    if (body === undefined) throw new RpcError("unauthenticated", "push-pull refused");
    return await this.handleBody(body);
  }

  /** Serves an already unwrapped push-pull body. */
  async handleBody(body: Uint8Array): Promise<Uint8Array> {
    const m = decodePushPull(body);
    if (m === undefined) throw new RpcError("invalid_argument", "malformed push-pull");
    this.counters.pushPullsServed++;
    // Merge first: the reply then already carries our refutation of anything the peer believed
    // about us (e.g. that we died while a partition separated us), which heals partitions faster.
    this.merge(m, m.join);
    return await this.#host.wrap(this.encodeState(false));
  }

  /**
   * One exchange with `addr`. Rejects with `RpcError` when the peer cannot be reached, refuses,
   * or answers garbage.
   */
  async exchange(addr: string, join: boolean, timeoutMs: number, transport: {
    request(to: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  }): Promise<void> {
    const req = await this.#host.wrap(this.encodeState(join));
    let reply: Uint8Array;
    try {
      reply = await transport.request(addr, req, timeoutMs);
    } catch (e) {
      this.counters.pushPullFailures++;
      throw e instanceof RpcError ? e : new RpcError("unavailable", String(e), { cause: e });
    }
    const body = await this.#host.unwrap(reply);
    if (body === undefined) {
      this.counters.pushPullFailures++;
      throw new RpcError("unauthenticated", `push-pull reply from ${addr} refused (label or key)`);
    }
    const m = decodePushPull(body);
    if (m === undefined) {
      this.counters.pushPullFailures++;
      throw new RpcError("internal", `malformed push-pull reply from ${addr}`);
    }
    this.counters.pushPulls++;
    this.merge(m);
  }

  /**
   * Picks the peer of the next periodic exchange: a random live member, or every fourth time a
   * random dead tombstone (partition healing). `undefined` when alone.
   */
  pickPeer(): string | undefined {
    const host = this.#host;
    this.#ticks++;
    if (this.#ticks % 4 === 0) {
      const dead: string[] = [];
      for (const r of host.table.values()) if (r.state === "dead") dead.push(r.gossipAddr);
      if (dead.length > 0) {
        this.counters.reconnectAttempts++;
        return dead[Math.floor(host.random() * dead.length)];
      }
    }
    const peers = host.table.randomLive(1, host.random);
    return peers[0]?.gossipAddr;
  }
}
