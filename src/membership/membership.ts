/**
 * {@linkcode ClusterMembership}: SWIM gossip membership with Lifeguard, phi-accrual ring
 * monitors, push-pull anti-entropy, partition detection and an optional keyring, tying together
 * the mechanisms of this folder (one per file). All time comes from the injected {@linkcode Clock}
 * and all I/O goes through the injected {@linkcode Transport}, so the same code runs over real
 * UDP and in the simulator.
 *
 * @module
 */
import { RpcError } from "../errors.ts";
import { Awareness } from "./awareness.ts";
import { BroadcastQueue } from "./broadcast_queue.ts";
import { systemClock, TrackedClock } from "./clock.ts";
import { Envelope } from "./envelope.ts";
import {
  ByteWriter,
  decodeBody,
  encodeMessage,
  type GossipMessage,
  type LeaveMessage,
  MessageType,
  type PushPullMessage,
  writeMessage,
} from "./codec.ts";
import {
  checkAdvertiseAddr,
  checkSeeds,
  checkTags,
  failureDetectionBoundMs,
  MAX_ADDR_BYTES,
  type MembershipConfig,
  pushPullIntervalMs,
  resolveConfig,
  type ResolvedConfig,
  utf8Length,
} from "./config.ts";
import type { ProtocolHost } from "./protocol_host.ts";
import { EventHub } from "./events.ts";
import { nextIncarnation } from "./incarnation.ts";
import { defaultResolveHost, isOwnAddress, Joiner, type JoinStatus } from "./join.ts";
import { ReconnectList } from "./reconnect.ts";
import { MemberRecord, type MemberSeed, MemberTable } from "./member_table.ts";
import { createPhiDetector, Monitors, type PhiDetector } from "./monitors.ts";
import { PartitionDetector } from "./partition.ts";
import { AckRegistry, Prober } from "./probe.ts";
import { PushPull } from "./push_pull.ts";
import { StateMessages } from "./state_messages.ts";
import { UserBroadcasts } from "./user_broadcasts.ts";
import { Suspicions } from "./suspicion.ts";
import type { Clock } from "./transport.ts";
import type { ClusterEvent, ClusterEventType, Member, MembershipView, Tags } from "./types.ts";
import { UdpTransport, type UdpTransportStats } from "./udp_transport.ts";

export type { MembershipStats } from "./types.ts";
import type { MembershipStats } from "./types.ts";

/**
 * Options of {@linkcode ClusterMembership} beyond {@linkcode MembershipConfig}.
 *
 * @example
 * ```ts
 * import {
 *   ClusterMembership,
 *   type ClusterMembershipOptions,
 *   Keyring,
 * } from "@rpcnet/cluster";
 *
 * declare const gossipKey: Uint8Array; // 32 bytes, e.g. from `rpcnet keygen`
 * const options: ClusterMembershipOptions = {
 *   id: "cache-7",
 *   bindHost: "0.0.0.0",
 *   bindPort: 7946,
 *   advertiseAddr: "10.0.0.7:7946", // what the others send to
 *   rpcAddr: "10.0.0.7:7373", // spread with the member record
 *   tags: { role: "cache" },
 *   keyring: new Keyring([gossipKey]),
 *   seeds: ["10.0.0.1:7946"],
 *   profile: "LAN",
 *   probeIntervalMs: 500, // one of the profile's timings, overridden
 * };
 * const membership = new ClusterMembership(options);
 * await membership.start();
 * ```
 */
export interface ClusterMembershipOptions extends MembershipConfig {
  /**
   * Phi detector to use (default: a fresh `PhiAccrualDetector`). A detector shared by many
   * simulated nodes keeps memory flat; ids are then prefixed with `detectorKeyPrefix`.
   */
  detector?: PhiDetector;
  /** Prefix for this node's ids in a shared `detector`; default `"<localId>\0"` when shared. */
  detectorKeyPrefix?: string;
}

let preloadImpl: (m: ClusterMembership, members: Iterable<MemberSeed>) => number;

/**
 * Starts `membership` from a converged view: every member in `members` is added as alive, with
 * no events and no gossip, as if learnt from a sync. The simulator uses it to build a large
 * stable cluster without replaying its bootstrap (which costs O(N²) messages); not part of the
 * public API. Returns how many were new.
 */
export function preloadMembers(
  membership: ClusterMembership,
  members: Iterable<MemberSeed>,
): number {
  return preloadImpl(membership, members);
}

/**
 * A member of a SWIM cluster.
 *
 * @example
 * ```ts
 * import { ClusterMembership } from "@rpcnet/cluster";
 *
 * const a = new ClusterMembership({ profile: "LOCAL", tags: { role: "worker" } });
 * await a.start();
 * const b = new ClusterMembership({ profile: "LOCAL" });
 * await b.start();
 * await b.join([a.localAddr]);
 * for await (const e of b.subscribe()) {
 *   console.log(e.type);
 *   break;
 * }
 * await b.leave();
 * await a.shutdown();
 * ```
 */
export class ClusterMembership implements MembershipView {
  static {
    preloadImpl = (m, members) => m.#table.preload(members, m.clock.now());
  }

  /** This node's id. */
  readonly localId: string;
  /** Resolved configuration. */
  readonly config: ResolvedConfig;
  /** Time source. */
  readonly clock: Clock;
  /** Random source. */
  readonly random: () => number;
  readonly #table: MemberTable;
  readonly #awareness: Awareness;
  readonly #host: ProtocolHost;
  /** Every timer of every mechanism goes through it, so shutdown() can cancel them all. */
  readonly #clock: TrackedClock;
  readonly #envelope: Envelope;

  readonly #options: ClusterMembershipOptions;
  readonly #events: EventHub;
  readonly #queue: BroadcastQueue;
  readonly #user: UserBroadcasts;
  readonly #acks: AckRegistry;
  readonly #prober: Prober;
  readonly #monitors: Monitors;
  readonly #pushPull: PushPull;
  readonly #partition = new PartitionDetector();
  readonly #suspicions: Suspicions;
  readonly #states: StateMessages;
  #seq = 0;
  #state: "new" | "starting" | "running" | "leaving" | "stopped" = "new";
  #probeInFlight = false;
  #pushPullInFlight = false;
  readonly #stats = {
    handlerErrors: 0,
  };
  readonly #reconnect: ReconnectList;
  readonly #joiner: Joiner;

  /**
   * Creates a node (no I/O until {@linkcode ClusterMembership.start}).
   *
   * @throws {RpcError} `invalid_argument` for a bad configuration or tags.
   */
  constructor(config: ClusterMembershipOptions = {}) {
    this.config = resolveConfig(config);
    this.#options = config;
    this.clock = config.clock ?? systemClock;
    this.random = config.random ?? Math.random;
    this.localId = config.id ?? crypto.randomUUID();
    const tags = checkTags(config.tags ?? {}, this.config.maxTagsBytes);
    const local = new MemberRecord(
      this.localId,
      config.advertiseAddr ?? "",
      config.rpcAddr ?? "",
      config.incarnation ?? 0,
      "alive",
      tags,
      this.clock.now(),
    );
    this.#table = new MemberTable(local, this.config.maxMembers);
    this.#reconnect = new ReconnectList(this.config.maxMembers);
    const seeds = config.seeds === undefined
      ? []
      : checkSeeds(`${this.config.optionPrefix}seeds`, config.seeds);
    this.#awareness = new Awareness(this.config.awarenessMaxMultiplier, this.config.lifeguard);
    this.#events = new EventHub(this.config.eventBufferSize);
    const liveCount = () => this.#table.liveCount;
    this.#queue = new BroadcastQueue(
      this.config.retransmitMult,
      liveCount,
      this.config.maxBroadcastQueue,
    );
    this.#user = new UserBroadcasts(
      this.localId,
      this.config.retransmitMult,
      liveCount,
      config.onUserMessage,
    );
    // The narrow interface the mechanisms (probe, monitors, push-pull) see of this node.
    const isRunning = () => this.running;
    this.#clock = new TrackedClock(this.clock);
    this.#envelope = new Envelope(this.config.label, config.keyring, {
      membership: this.#queue,
      user: this.#user.queue,
      userReserve: this.config.userBroadcastReserve,
    });
    const envelope = this.#envelope;
    this.#host = {
      config: this.config,
      clock: this.#clock,
      random: this.random,
      table: this.#table,
      awareness: this.#awareness,
      get running() {
        return isRunning();
      },
      nextSeq: () => this.#nextSeq(),
      send: (addr, messages, piggyback) => envelope.send(addr, messages, piggyback),
      suspectLocally: (target, incarnation) => this.#states.suspectLocally(target, incarnation),
      handleAlive: (m, merged) => this.#states.alive(m, merged),
      handleDead: (m) => this.#states.dead(m),
      wrap: (body) => envelope.wrap(body),
      request: (addr, body, timeoutMs) => {
        const t = envelope.transport;
        if (t === undefined) return Promise.reject(new RpcError("unavailable", "not started"));
        return t.request(addr, body, timeoutMs);
      },
      unwrap: (packet) => envelope.unwrap(packet),
      verifyVerdict: (m) => this.#states.verifyVerdict(m),
      yieldNow: () => this.#clock.sleep(0),
      refusal: (packet, what) => envelope.refusal(packet, what),
    };
    this.#acks = new AckRegistry(this.#host);
    this.#prober = new Prober(this.#host, this.#acks);
    this.#suspicions = new Suspicions(this.#host, this.#prober);
    this.#states = new StateMessages(this.#host, {
      queue: this.#queue,
      reconnect: this.#reconnect,
      suspicions: this.#suspicions,
      acks: this.#acks,
      state: () => this.#state,
      emit: (e) => this.#events.emit(e),
      snapshot: (r) => this.#snapshot(r),
      phi: (id) => this.#monitors.phi(id),
    });
    const shared = config.detector !== undefined;
    this.#monitors = new Monitors(
      this.#host,
      this.#acks,
      this.#prober,
      config.detector ?? createPhiDetector(this.config),
      config.detectorKeyPrefix ?? (shared ? `${this.localId}\u0000` : ""),
    );
    this.#pushPull = new PushPull(this.#host);
    this.#joiner = new Joiner(
      {
        localId: this.localId,
        config: this.config,
        clock: this.#clock,
        random: this.random,
        get running() {
          return isRunning();
        },
        sleep: (ms) => this.#clock.sleep(ms),
        isSelf: (addr) => isOwnAddress(addr, this.localAddr, this.#envelope.transport?.localAddr),
        exchange: (addr, ms) => this.#exchange(addr, ms, true),
        // Members that joined at the same time as us are in no seed's state yet: two follow-up
        // syncs a few and ~ten probe rounds later pick them up (memberlist leaves this to the
        // periodic push-pull, which takes minutes at scale).
        onJoined: () => {
          for (const rounds of [2, 10]) {
            this.#clock.setTimeout(
              () => this.#pushPullTick(),
              rounds * this.config.probeIntervalMs +
                10 * this.config.gossipIntervalMs * this.random(),
            );
          }
        },
      },
      seeds,
      config.resolveHost ?? defaultResolveHost,
    );
  }

  // ---------------------------------------------------------------- public API

  /** The gossip address others reach this node at (set once started). */
  get localAddr(): string {
    return this.#table.local.gossipAddr;
  }

  /** Whether the protocol is running (started, not shut down). */
  get running(): boolean {
    return this.#state === "running" || this.#state === "leaving";
  }

  /** An upper bound for a crash to be declared dead everywhere at the current size. */
  failureDetectionBoundMs(): number {
    return failureDetectionBoundMs(this.config, this.#table.liveCount);
  }

  /**
   * Binds the transport (UDP on `bindHost:bindPort` unless one was injected) and starts the
   * protocol loops.
   *
   * @throws {RpcError} `unavailable` when the socket cannot be bound; `invalid_argument` when
   * called twice.
   */
  async start(): Promise<void> {
    if (this.#state !== "new") {
      throw new RpcError("invalid_argument", `start(): membership is already ${this.#state}`);
    }
    this.#state = "starting";
    try {
      await this.#envelope.init();
      this.#envelope.transport = this.#options.transport ?? await UdpTransport.bind({
        hostname: this.#options.bindHost ?? "127.0.0.1",
        port: this.#options.bindPort ?? 0,
      });
    } catch (e) {
      this.#state = "new";
      if (e instanceof RpcError) throw e;
      throw new RpcError("unavailable", `membership could not bind: ${String(e)}`, { cause: e });
    }
    const local = this.#table.local;
    if (local.gossipAddr === "") {
      try {
        // Bound to a wildcard without advertiseAddr: refused, since nobody could reach
        // 0.0.0.0 (memberlist guesses an interface; an explicit address is less surprising).
        checkAdvertiseAddr(
          `${this.config.optionPrefix}advertiseAddr`,
          this.#envelope.transport.localAddr,
        );
      } catch (e) {
        this.#state = "new";
        if (this.#options.transport === undefined) await this.#envelope.transport.close();
        this.#envelope.transport = undefined;
        throw new RpcError(
          "invalid_argument",
          `${(e as Error).message} (bindHost ${
            JSON.stringify(this.#options.bindHost)
          } is a wildcard: set advertiseAddr)`,
        );
      }
      local.gossipAddr = this.#envelope.transport.localAddr;
    }
    if (utf8Length(local.gossipAddr) > MAX_ADDR_BYTES) {
      throw new RpcError("invalid_argument", "gossip address too long");
    }
    local.stateChangedAt = this.clock.now();
    this.#envelope.transport.onPacket((data, from) => this.#onPacket(data, from));
    this.#envelope.transport.onRequest((req, from) => this.#onRequest(req, from));
    this.#state = "running";
    // Announce ourselves: gossiped as soon as we know anyone (after join).
    this.#states.announce();
    const c = this.config;
    // Random initial offsets keep thousands of simulated nodes from ticking in lockstep.
    this.#loop(() => c.probeIntervalMs, () => this.#probeTick());
    this.#loop(() => c.gossipIntervalMs, () => this.#gossipTick());
    if (c.monitoredMembers > 0) {
      this.#loop(() => c.heartbeatIntervalMs, () => this.#monitors.tick());
    }
    this.#loop(
      () => pushPullIntervalMs(c.pushPullIntervalMs, this.#table.liveCount),
      () => this.#pushPullTick(),
    );
    this.#loop(() => c.probeIntervalMs, () => this.#maintenanceTick());
    this.#loop(() => c.reconnectIntervalMs, () => this.#reconnectTick());
    if (this.#options.seeds !== undefined) {
      if (this.#joiner.seeds.length === 0) this.#joiner.markJoined();
      else void this.#joiner.retry();
    }
  }

  /**
   * Joins a cluster through `seeds` (gossip addresses `host:port`, IPv6 in brackets; a host name
   * is resolved again on every attempt, to all its A/AAAA records): a full state exchange with
   * every resolved address, retried until at least one other node answers or
   * `bootstrapTimeoutMs` passes. Starts the node first if needed. An empty list bootstraps a new
   * cluster and returns 0. Reaching only this node itself never counts as joined. For joining in
   * the background instead, give the `seeds` option and await {@linkcode whenJoined}.
   *
   * @returns how many seed addresses answered
   * @throws {RpcError} `invalid_argument` for a bad seed list (at once), or when a seed is not
   * this protocol or uses another cluster label; `unauthenticated` when a seed refuses this
   * node's keyring (both fail fast: retrying cannot fix them); `unavailable` when no seed
   * answers within `bootstrapTimeoutMs` (the node keeps running, and `join` may be retried).
   */
  async join(seeds: string[]): Promise<number> {
    const list = checkSeeds("seeds", seeds);
    if (this.#state === "new") await this.start();
    if (!this.running) throw new RpcError("unavailable", "join(): membership is shut down");
    return await this.#joiner.join(list);
  }

  /**
   * Resolves once this node has joined a cluster: another node answered a join, or the `seeds`
   * option was an empty list (a new cluster). Use it as a readiness signal.
   *
   * @throws {RpcError} (rejects) when the background join (`seeds` option) gives up: every
   * seed refused this node (`unauthenticated`, `invalid_argument`: fails fast), or
   * `retryJoinMax` attempts failed (`unavailable`); `unavailable` when shut down first.
   */
  whenJoined(): Promise<void> {
    return this.#joiner.whenJoined();
  }

  /** Whether this node has joined a cluster (see {@linkcode whenJoined}). */
  get joined(): boolean {
    return this.#joiner.joined;
  }

  /** Where this node stands in joining (for readiness probes and logs). */
  joinStatus(): JoinStatus {
    return this.#joiner.status();
  }

  /** A push-pull with `addr` (join flag set); merged with `announce` after a reconnect. */
  #exchange(addr: string, timeoutMs: number, join: boolean, announce = false): Promise<
    PushPullMessage
  > {
    if (this.#envelope.transport === undefined) {
      return Promise.reject(new RpcError("unavailable", "not started"));
    }
    return this.#pushPull.exchange(addr, join, timeoutMs, announce);
  }

  /**
   * Leaves gracefully: broadcasts the departure (others report `NodeLeft`, not `NodeFailed`),
   * waits until it has been gossiped (at most `timeoutMs`, default 5 × probe interval or 1 s,
   * whichever is larger), then shuts down.
   */
  async leave(timeoutMs?: number): Promise<void> {
    if (this.#state !== "running") {
      if (this.#state === "new") this.#state = "stopped";
      return;
    }
    this.#state = "leaving";
    const local = this.#table.local;
    local.incarnation = nextIncarnation(local.incarnation);
    const msg: LeaveMessage = { type: "leave", node: this.localId, incarnation: local.incarnation };
    // Pick the peers while this node is still on the live ring: once it is "left", a two-node
    // cluster has a ring of one and no one would hear the leave (it would be seen as a failure).
    const peers = this.#table.randomLive(this.config.gossipNodes, this.random);
    this.#table.setLocalState("left", this.clock.now());
    if (peers.length > 0) {
      let resolveDone!: () => void;
      const done = new Promise<void>((r) => resolveDone = r);
      this.#queue.queue(this.localId, encodeMessage(msg), () => resolveDone());
      for (const p of peers) this.#envelope.send(p.gossipAddr, [msg], false);
      const wait = timeoutMs ?? Math.max(1000, 5 * this.config.probeIntervalMs);
      let timer: number | undefined;
      await Promise.race([
        done,
        new Promise<void>((r) => {
          timer = this.#clock.setTimeout(r, wait);
        }),
      ]);
      if (timer !== undefined) this.#clock.clearTimeout(timer);
    }
    await this.shutdown();
  }

  /** Stops at once: timers cancelled, transport closed, subscriptions ended. Others will see it fail. */
  async shutdown(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    // Detached first: nothing is sent once stopped.
    const t = this.#envelope.transport;
    this.#envelope.transport = undefined;
    this.#joiner.stop();
    this.#clock.cancelAll();
    this.#acks.clear();
    this.#suspicions.clear();
    this.#monitors.clear();
    this.#queue.clear();
    this.#user.queue.clear();
    this.#events.closeAll();
    if (t !== undefined) {
      try {
        await t.close();
      } catch {
        // already closed
      }
    }
  }

  /**
   * Replaces this node's tags and disseminates them (an alive message at a higher incarnation).
   *
   * @throws {RpcError} `invalid_argument` for non-string values, a key or value over 255 bytes,
   * more than 255 tags, or more than `maxTagsBytes` encoded.
   */
  setTags(tags: Tags): void {
    const t = checkTags(tags, this.config.maxTagsBytes);
    const local = this.#table.local;
    local.tags = t;
    local.incarnation = nextIncarnation(local.incarnation);
    if (this.running) this.#states.announce();
  }

  /**
   * Queues an application broadcast, piggybacked on gossip in the room the membership traffic
   * leaves (`userBroadcastReserve` per datagram is kept for it) and re-gossiped by every member
   * that receives it, so it reaches the cluster epidemically. Each member delivers it once to
   * its `onUserMessage` option (best effort, like all gossip).
   *
   * @throws {RpcError} `invalid_argument` when it cannot fit in one datagram.
   */
  broadcast(payload: Uint8Array): void {
    this.#user.broadcast(payload, this.#envelope.maxBody());
  }

  /** This node's own record. */
  localMember(): Member {
    return this.#snapshot(this.#table.local);
  }

  /** Every known member, this node and tombstones included. */
  members(): Member[] {
    const out: Member[] = [];
    for (const r of this.#table.values()) out.push(this.#snapshot(r));
    return out;
  }

  /** One member by id. */
  get(id: string): Member | undefined {
    const r = this.#table.get(id);
    return r === undefined ? undefined : this.#snapshot(r);
  }

  /** Events from now on, through a bounded buffer (default `eventBufferSize`). */
  subscribe(options?: { bufferSize?: number }): AsyncIterableIterator<ClusterEvent> {
    try {
      return this.#events.subscribe(options);
    } catch (e) {
      throw new RpcError("invalid_argument", String((e as Error).message));
    }
  }

  /** Listens to one event type; the event's `detail` is the {@linkcode ClusterEvent}. */
  addEventListener(
    type: ClusterEventType,
    listener: (event: CustomEvent<ClusterEvent>) => void,
  ): void {
    this.#events.addEventListener(type, listener);
  }

  /** Removes a listener. */
  removeEventListener(
    type: ClusterEventType,
    listener: (event: CustomEvent<ClusterEvent>) => void,
  ): void {
    this.#events.removeEventListener(type, listener);
  }

  /** Counters and gauges. */
  stats(): MembershipStats {
    const pp = this.#pushPull.counters;
    const t = this.#envelope.transport as { stats?: () => Partial<UdpTransportStats> } | undefined;
    const ts = typeof t?.stats === "function" ? t.stats() : undefined;
    const env = this.#envelope.counters;
    return {
      ...env,
      ...this.#stats,
      ...this.#states.counters,
      handlerErrors: this.#stats.handlerErrors + env.handlerErrors + this.#user.handlerErrors,
      eventsEmitted: this.#events.emitted,
      eventsDropped: this.#events.dropped,
      ...this.#prober.counters,
      heartbeats: this.#monitors.heartbeats,
      phiProbes: this.#monitors.phiProbes,
      pushPulls: pp.pushPulls,
      pushPullFailures: pp.pushPullFailures,
      pushPullsServed: pp.pushPullsServed,
      droppedTableFull: this.#table.refusedFull,
      droppedSyncs: pp.syncsRefused,
      broadcastQueue: this.#queue.size,
      userBroadcastQueue: this.#user.queue.size,
      broadcastsPruned: this.#queue.pruned + this.#user.queue.pruned,
      awareness: this.#awareness.score,
      incarnation: this.#table.local.incarnation,
      members: this.#table.size,
      liveMembers: this.#table.liveCount,
      partitionsDetected: this.#partition.detected,
      partitionsHealed: this.#partition.healed,
      reconnectList: this.#reconnect.size,
      ...this.#reconnect.counters,
      joinAttempts: this.#joiner.status().attempts,
      joined: this.#joiner.joined ? 1 : 0,
      streamsRefused: ts?.streamsRefused ?? 0,
      streamsEvicted: ts?.streamsEvicted ?? 0,
      streamHeaderTimeouts: ts?.streamHeaderTimeouts ?? 0,
    };
  }

  /** Ids of the ring successors this node monitors with phi accrual. */
  monitoredMembers(): readonly string[] {
    return [...this.#monitors.monitored];
  }

  // ---------------------------------------------------------------- ProtocolHost

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0;
    return this.#seq;
  }

  // ---------------------------------------------------------------- internals

  /** Serves the reliable channel: push-pull syncs, and fallback pings (answered with an ack). */
  async #onRequest(request: Uint8Array, _from: string): Promise<Uint8Array> {
    const body = await this.#envelope.unwrap(request);
    if (body === undefined) throw this.#envelope.refusal(request, "request");
    if (body[0] === MessageType.pushPull) return await this.#pushPull.handleBody(body);
    const decoded = decodeBody(body);
    const ping = decoded?.messages[0];
    if (ping === undefined || ping.type !== "ping" || ping.target !== this.localId) {
      this.#envelope.counters.droppedDecode++;
      throw new RpcError("invalid_argument", "malformed request");
    }
    const w = new ByteWriter(64);
    writeMessage(w, this.#states.localAlive());
    writeMessage(w, { type: "ack", seq: ping.seq });
    return await this.#envelope.wrap(w.toBytes());
  }

  #onPacket(data: Uint8Array, from: string): void {
    this.#envelope.receive(data, from, () => this.running, (decoded, sender) => {
      let suspectedSelf = false;
      for (const m of decoded.messages) {
        try {
          if (m.type === "suspect" && m.node === this.localId) suspectedSelf = true;
          if (suspectedSelf && m.type === "ping" && m.target === this.localId) {
            // Buddy system: the pinger suspects us (perhaps of an incarnation we already
            // refuted, whose refutation it missed): answer with our current alive record.
            this.#envelope.send(sender, [this.#states.localAlive(), { type: "ack", seq: m.seq }]);
            continue;
          }
          this.#handleMessage(m, sender);
        } catch {
          this.#stats.handlerErrors++;
        }
      }
    });
  }

  #handleMessage(m: GossipMessage, from: string): void {
    switch (m.type) {
      case "ping":
      case "ack":
      case "nack":
      case "ping-req":
        this.#prober.receive(m, from);
        return;
      case "suspect":
        this.#states.suspect(m);
        return;
      case "alive":
        this.#states.alive(m);
        return;
      case "dead":
      case "leave":
        this.#states.dead(m);
        return;
      case "user":
        this.#user.receive(m, from);
        return;
    }
  }

  #snapshot(r: MemberRecord): Member {
    return {
      id: r.id,
      gossipAddr: r.gossipAddr,
      rpcAddr: r.rpcAddr,
      incarnation: r.incarnation,
      state: r.state,
      tags: r.tags,
      phi: r.id === this.localId ? 0 : this.#monitors.phi(r.id),
      stateChangedAt: r.stateChangedAt,
    };
  }

  /** Runs `fn` every `interval()` ms, first after a random fraction of it. */
  #loop(interval: () => number, fn: () => void): void {
    const run = () => {
      if (!this.running) return;
      try {
        fn();
      } catch {
        this.#stats.handlerErrors++;
      }
      if (this.running) this.#clock.setTimeout(run, interval());
    };
    this.#clock.setTimeout(run, Math.floor(this.random() * interval()));
  }

  #probeTick(): void {
    if (this.#probeInFlight) return;
    const target = this.#prober.nextTarget();
    if (target === undefined) return;
    this.#probeInFlight = true;
    this.#prober.probe(target, () => {
      this.#probeInFlight = false;
    });
  }

  #gossipTick(): void {
    if (this.#queue.size === 0 && this.#user.queue.size === 0) return;
    const peers = this.#table.randomLive(this.config.gossipNodes, this.random);
    for (const p of peers) this.#envelope.send(p.gossipAddr, []);
  }

  #pushPullTick(): void {
    if (this.#pushPullInFlight || this.#envelope.transport === undefined) return;
    const peer = this.#pushPull.pickPeer();
    if (peer === undefined) return;
    this.#pushPullInFlight = true;
    this.#pushPull.exchange(peer, false, this.config.pushPullTimeoutMs)
      .catch(() => {})
      .finally(() => {
        this.#pushPullInFlight = false;
      });
  }

  /**
   * Tries one member declared dead (serf's reconnect), and re-joins the seeds while the view is
   * partitioned or this node is alone: partitions then heal however long they lasted.
   */
  #reconnectTick(): void {
    if (this.#envelope.transport === undefined) return;
    const c = this.config;
    const timeout = Math.min(c.pushPullTimeoutMs, c.reconnectIntervalMs);
    const j = this.#joiner;
    const rejoin = j.seeds.length > 0 && j.joined &&
      (this.#partition.partitioned || this.#table.liveCount === 1);
    this.#reconnect.tick(
      this.clock.now(),
      c.reconnectTimeoutMs,
      this.random,
      (addr) => this.#exchange(addr, timeout, true, true),
      rejoin ? () => j.attempt(j.seeds, timeout) : undefined,
      () => this.running,
    );
  }

  #maintenanceTick(): void {
    const now = this.clock.now();
    for (const id of this.#table.reap(now, this.config.reapIntervalMs)) {
      this.#suspicions.cancel(id);
    }
    const change = this.#partition.check(this.#table, now, this.config.stableAfterMs);
    if (change?.type === "detected") {
      this.#events.emit({
        type: "PartitionDetected",
        reachable: change.reachable,
        unreachable: change.unreachable,
      });
    } else if (change?.type === "healed") {
      this.#events.emit({ type: "PartitionHealed", members: change.members });
    }
  }
}
