/**
 * An in-memory network for the simulator: datagrams and request/response exchanges between
 * {@linkcode SimTransport}s, with loss, latency, partitions, paused and crashed nodes, all in
 * {@linkcode VirtualClock} time. Addresses such as `10.0.3.7:7946` are only labels.
 *
 * @module
 */
import { RpcError } from "../../errors.ts";
import type { Clock, PacketHandler, StreamHandler, Transport } from "../transport.ts";
import { NodeClock, type SimNodeState, VirtualClock } from "./virtual_clock.ts";

/** Options of {@linkcode SimNetwork}. */
export interface SimNetworkOptions {
  /** The virtual clock; default a new one with `seed`. */
  clock?: VirtualClock;
  /** Seed for a clock created here; default 1. */
  seed?: number;
  /** Probability each datagram (and each stream exchange) is lost, 0..1; default 0. */
  loss?: number;
  /** One-way latency floor, ms; default 0.5 (a LAN). */
  latencyMs?: number;
  /** Uniform extra latency in [0, jitterMs), ms; default 0.5. */
  jitterMs?: number;
  /** Largest datagram, bytes; default 1400. Larger sends throw `invalid_argument` like UDP. */
  maxPacketSize?: number;
  /** Largest stream request or reply, bytes; default 16 MiB. */
  maxStreamBytes?: number;
}

/** Traffic counters of one simulated node (or the whole network). */
export interface SimTrafficStats {
  /** Datagrams sent. */
  packetsOut: number;
  /** Datagram bytes sent. */
  bytesOut: number;
  /** Datagrams delivered to the node's handler. */
  packetsIn: number;
  /** Datagram bytes delivered. */
  bytesIn: number;
  /** Stream requests sent. */
  requestsOut: number;
  /** Stream bytes sent (requests made plus replies given). */
  streamBytesOut: number;
  /** Datagrams from this node lost to random loss. */
  lost: number;
  /** Datagrams from this node dropped by a partition or a crashed/unknown destination. */
  blocked: number;
  /** Datagrams to this node dropped because it was paused with a full receive buffer. */
  bufferDropped: number;
}

function emptyStats(): SimTrafficStats {
  return {
    packetsOut: 0,
    bytesOut: 0,
    packetsIn: 0,
    bytesIn: 0,
    requestsOut: 0,
    streamBytesOut: 0,
    lost: 0,
    blocked: 0,
    bufferDropped: 0,
  };
}

class SimNode implements SimNodeState {
  readonly addr: string;
  pausedUntil = 0;
  crashed = false;
  closed = false;
  deferred: SimNodeState["deferred"] = [];
  deferredPackets = 0;
  group = 0;
  onPacket: PacketHandler | undefined;
  onRequest: StreamHandler | undefined;
  readonly stats: SimTrafficStats = emptyStats();
  resumeScheduledFor = -1;

  constructor(addr: string) {
    this.addr = addr;
  }

  deliver(data: Uint8Array, from: string): void {
    if (this.closed) return;
    const h = this.onPacket;
    if (!h) return;
    this.stats.packetsIn++;
    this.stats.bytesIn += data.length;
    h(data, from);
  }

  dropBuffered(): void {
    this.stats.bufferDropped++;
  }
}

/**
 * The simulated network. Create one per simulation, then one {@linkcode SimTransport} per node.
 *
 * @example
 * ```ts
 * import { SimNetwork } from "@rpcnet/cluster/sim";
 *
 * const net = new SimNetwork({ seed: 7, loss: 0.1, latencyMs: 1, jitterMs: 1 });
 * const a = net.createTransport();
 * const b = net.createTransport();
 * b.onPacket((data, from) => console.log(data.length, "from", from, "at", net.clock.now()));
 * a.sendPacket(b.localAddr, new Uint8Array(100));
 * await net.clock.advance(10);
 * ```
 */
export class SimNetwork {
  /** The virtual clock every node of this network runs on. */
  readonly clock: VirtualClock;
  /** Largest datagram. */
  readonly maxPacketSize: number;
  /** Largest stream payload. */
  readonly maxStreamBytes: number;
  #loss: number;
  #latency: number;
  #jitter: number;
  readonly #nodes = new Map<string, SimNode>();
  #nextAddr = 0;

  /**
   * Creates an empty network.
   *
   * @throws {RpcError} `invalid_argument` for a loss outside 0..1 or a negative latency. */
  constructor(options: SimNetworkOptions = {}) {
    this.clock = options.clock ?? new VirtualClock({ seed: options.seed ?? 1 });
    this.maxPacketSize = options.maxPacketSize ?? 1400;
    this.maxStreamBytes = options.maxStreamBytes ?? 16 * 1024 * 1024;
    this.#loss = 0;
    this.#latency = 0.5;
    this.#jitter = 0.5;
    this.setLoss(options.loss ?? 0);
    this.setLatency(options.latencyMs ?? 0.5, options.jitterMs ?? 0.5);
  }

  /** Current loss probability. */
  get loss(): number {
    return this.#loss;
  }

  /** Sets the probability that a datagram or stream exchange is lost. */
  setLoss(p: number): void {
    if (!(p >= 0 && p <= 1)) {
      throw new RpcError("invalid_argument", `loss must be within 0..1, got ${p}`);
    }
    this.#loss = p;
  }

  /** Sets one-way latency: `baseMs` plus uniform jitter in [0, jitterMs). */
  setLatency(baseMs: number, jitterMs = 0): void {
    if (!(baseMs >= 0) || !(jitterMs >= 0)) {
      throw new RpcError("invalid_argument", `latency must be >= 0, got ${baseMs}+${jitterMs}`);
    }
    this.#latency = baseMs;
    this.#jitter = jitterMs;
  }

  /** Addresses of every transport created (crashed ones included). */
  get addresses(): string[] {
    return [...this.#nodes.keys()];
  }

  /**
   * A new node on the network. `addr` defaults to the next of `10.0.0.1:7946`, `10.0.0.2:7946`, …
   *
   * @throws {RpcError} `invalid_argument` when the address is already in use.
   */
  createTransport(addr?: string): SimTransport {
    if (addr === undefined) {
      do {
        const n = ++this.#nextAddr;
        addr = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:7946`;
      } while (this.#nodes.has(addr));
    }
    const existing = this.#nodes.get(addr);
    if (existing && !existing.closed && !existing.crashed) {
      throw new RpcError("invalid_argument", `address ${addr} is already in use`);
    }
    const node = new SimNode(addr);
    this.#nodes.set(addr, node);
    return new SimTransport(this, node, new NodeClock(this.clock, node));
  }

  /**
   * Splits the network: nodes in different groups cannot exchange anything; nodes not listed form
   * one more group. Replaces any previous partition.
   */
  partition(groups: readonly (readonly string[])[]): void {
    for (const n of this.#nodes.values()) n.group = 0;
    groups.forEach((g, i) => {
      for (const a of g) {
        const n = this.#nodes.get(a);
        if (n) n.group = i + 1;
      }
    });
  }

  /** Removes every partition. */
  heal(): void {
    for (const n of this.#nodes.values()) n.group = 0;
  }

  /**
   * Pauses (starves) a node for `ms` from now: it runs no timers and handles no datagrams or
   * requests (up to 256 datagrams wait in its receive buffer, more are dropped); when the pause
   * ends it catches up like a stalled event loop: expired timers first (in order), then the
   * buffered datagrams and stream traffic (in order). Models GC pauses/overload.
   */
  pause(addr: string, ms: number): void {
    const node = this.#node(addr);
    const until = this.clock.now() + Math.max(0, ms);
    if (until <= node.pausedUntil) return;
    node.pausedUntil = until;
    node.resumeScheduledFor = until;
    this.clock.scheduleTask(until, () => {
      if (node.resumeScheduledFor !== until) return; // extended by a later pause
      node.resumeScheduledFor = -1;
      this.clock.resumeNode(node);
    }, undefined);
  }

  /** Whether a node is paused right now. */
  isPaused(addr: string): boolean {
    return this.#node(addr).pausedUntil > this.clock.now();
  }

  /** Crashes a node: it never runs again and everything sent to it is lost. */
  crash(addr: string): void {
    const node = this.#node(addr);
    node.crashed = true;
    node.deferred = [];
  }

  /** Traffic counters of one node. */
  stats(addr: string): SimTrafficStats {
    return { ...this.#node(addr).stats };
  }

  /** Traffic counters summed over every node. */
  totals(): SimTrafficStats {
    const t = emptyStats();
    for (const n of this.#nodes.values()) {
      for (const k of Object.keys(t) as (keyof SimTrafficStats)[]) t[k] += n.stats[k];
    }
    return t;
  }

  #node(addr: string): SimNode {
    const n = this.#nodes.get(addr);
    if (!n) throw new RpcError("not_found", `no simulated node at ${addr}`);
    return n;
  }

  /** @internal */
  latency(): number {
    return this.#jitter > 0 ? this.#latency + this.clock.rng.next() * this.#jitter : this.#latency;
  }

  /** @internal the destination when `from` can reach `to` now, else undefined. */
  route(from: SimNode, to: string): SimNode | undefined {
    const dest = this.#nodes.get(to);
    if (dest === undefined || dest.crashed || dest.closed || dest.group !== from.group) {
      return undefined;
    }
    return dest;
  }

  /** @internal */
  lost(): boolean {
    return this.#loss > 0 && this.clock.rng.next() < this.#loss;
  }

  /** @internal */
  sendPacket(from: SimNode, to: string, data: Uint8Array): void {
    if (data.length > this.maxPacketSize) {
      throw new RpcError(
        "invalid_argument",
        `datagram of ${data.length} bytes exceeds maxPacketSize ${this.maxPacketSize}`,
      );
    }
    if (from.closed || from.crashed) return;
    const s = from.stats;
    s.packetsOut++;
    s.bytesOut += data.length;
    const dest = this.route(from, to);
    if (dest === undefined) {
      s.blocked++;
      return;
    }
    if (this.lost()) {
      s.lost++;
      return;
    }
    // No copy: as with UdpTransport (whose send is asynchronous), the caller hands the buffer
    // over and must not mutate it afterwards; the protocol sends fresh buffers.
    this.clock.schedulePacket(this.clock.now() + this.latency(), dest, data, from.addr);
  }

  /** @internal */
  request(from: SimNode, to: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (from.closed || from.crashed) {
      return Promise.reject(new RpcError("unavailable", "transport is closed"));
    }
    if (request.length > this.maxStreamBytes) {
      return Promise.reject(
        new RpcError("invalid_argument", `request of ${request.length} bytes exceeds limit`),
      );
    }
    from.stats.requestsOut++;
    from.stats.streamBytesOut += request.length;
    const clock = this.clock;
    return new Promise<Uint8Array>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        fn();
      };
      // The caller's own timer: deferred if the caller is paused, like any of its timers.
      const timer = clock.scheduleTimer(
        () => {
          settle(() =>
            reject(
              new RpcError("deadline_exceeded", `request to ${to} timed out after ${timeoutMs} ms`),
            )
          );
        },
        timeoutMs,
        from,
      );
      const dest = this.#nodes.get(to);
      if (dest === undefined || dest.closed || (dest.crashed && dest.group === from.group)) {
        // Nothing listens there: refused after one round trip.
        clock.scheduleTask(clock.now() + 2 * this.latency(), () => {
          settle(() => reject(new RpcError("unavailable", `connection to ${to} refused`)));
        }, from);
        return;
      }
      if (dest.group !== from.group) return; // black hole: the deadline fires
      if (this.lost()) {
        // A reset mid-exchange on a lossy path.
        clock.scheduleTask(clock.now() + 2 * this.latency(), () => {
          settle(() => reject(new RpcError("unavailable", `connection to ${to} reset`)));
        }, from);
        return;
      }
      const data = request.slice();
      clock.scheduleTask(clock.now() + this.latency(), () => {
        if (dest.closed || dest.crashed || settled) return;
        const handler = dest.onRequest;
        if (!handler) {
          clock.scheduleTask(clock.now() + this.latency(), () => {
            settle(() => reject(new RpcError("unavailable", `${to} serves no requests`)));
          }, from);
          return;
        }
        let p: Promise<Uint8Array>;
        try {
          p = Promise.resolve(handler(data, from.addr));
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then((reply) => {
          if (dest.crashed || dest.closed) return;
          if (!(reply instanceof Uint8Array) || reply.length > this.maxStreamBytes) {
            throw new RpcError("internal", "handler returned no bytes or too many");
          }
          dest.stats.streamBytesOut += reply.length;
          const copy = reply.slice();
          clock.scheduleTask(clock.now() + this.latency(), () => {
            if (this.route(dest, from.addr) === undefined && !from.closed) return; // cut off
            settle(() => resolve(copy));
          }, from);
        }).catch((e) => {
          const err = e instanceof RpcError
            ? new RpcError(e.code, `peer ${to}: ${e.message}`)
            : new RpcError("internal", `peer ${to}: ${(e as Error)?.message ?? e}`);
          clock.scheduleTask(clock.now() + this.latency(), () => settle(() => reject(err)), from);
        });
      }, dest);
    });
  }
}

/**
 * One simulated node's {@linkcode Transport}, plus the {@linkcode Clock} it should use
 * ({@linkcode SimTransport.clock}) so that pausing the node also stops its timers.
 */
export class SimTransport implements Transport {
  /** The node's address (a label such as `10.0.0.1:7946`). */
  readonly localAddr: string;
  /** Largest datagram. */
  readonly maxPacketSize: number;
  /** This node's view of virtual time: pass it to the protocol as its clock. */
  readonly clock: Clock;
  readonly #net: SimNetwork;
  readonly #node: SimNode;

  /** @internal created by {@linkcode SimNetwork.createTransport}. */
  constructor(net: SimNetwork, node: SimNode, clock: Clock) {
    this.#net = net;
    this.#node = node;
    this.clock = clock;
    this.localAddr = node.addr;
    this.maxPacketSize = net.maxPacketSize;
  }

  /** This node's traffic counters. */
  stats(): SimTrafficStats {
    return { ...this.#node.stats };
  }

  /**
   * Sends one datagram through the simulated network (lost, delayed or blocked as configured).
   * The buffer is handed over (not copied): do not mutate it afterwards.
   *
   * @throws {RpcError} `invalid_argument` when `data` exceeds `maxPacketSize`.
   */
  sendPacket(to: string, data: Uint8Array): void {
    this.#net.sendPacket(this.#node, to, data);
  }

  /** Installs the datagram handler. */
  onPacket(handler: PacketHandler): void {
    this.#node.onPacket = handler;
  }

  /**
   * A reliable exchange with latency each way. Rejects `deadline_exceeded` when partitioned away
   * or the peer stays paused past `timeoutMs`, `unavailable` when nothing listens at `to` or the
   * exchange is lost.
   */
  request(to: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.#net.request(this.#node, to, request, timeoutMs);
  }

  /** Installs the request handler. */
  onRequest(handler: StreamHandler): void {
    this.#node.onRequest = handler;
  }

  /** Detaches the node: nothing more is sent or delivered. */
  close(): Promise<void> {
    this.#node.closed = true;
    this.#node.deferred = [];
    return Promise.resolve();
  }
}
