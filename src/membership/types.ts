/**
 * The shapes membership shares with the layers above it (registry, client).
 *
 * @module
 */

import type { EnvelopeCounters } from "./envelope.ts";

/** A member's state as SWIM sees it. Precedence at equal incarnation: dead/left > suspect > alive. */
export type MemberState = "alive" | "suspect" | "dead" | "left";

/** Free-form key/value labels of a node, used by tag filters (`role=worker`, `zone=eu-1`). */
export type Tags = Readonly<Record<string, string>>;

/** What every node knows about one member of the cluster. */
export interface Member {
  /** Unique, stable node id (chosen by the node; defaults to a random UUID). */
  readonly id: string;
  /** UDP address of the node's gossip socket, `host:port`. */
  readonly gossipAddr: string;
  /** QUIC address of the node's RPC server, `host:port` (empty when the node serves no RPC). */
  readonly rpcAddr: string;
  /** The member's incarnation number; only the member itself raises it. */
  readonly incarnation: number;
  /** Current SWIM state. */
  readonly state: MemberState;
  /** The member's tags. */
  readonly tags: Tags;
  /** Phi of the last heartbeat arrival, when this node monitors the member, else 0. */
  readonly phi: number;
  /** Milliseconds since the epoch of the last state change seen locally. */
  readonly stateChangedAt: number;
}

/** A change in cluster membership, as delivered to subscribers. */
export type ClusterEvent =
  | { readonly type: "NodeJoined"; readonly node: Member }
  | { readonly type: "NodeLeft"; readonly node: Member }
  | { readonly type: "NodeFailed"; readonly node: Member }
  | { readonly type: "NodeSuspect"; readonly node: Member; readonly phi: number }
  | { readonly type: "NodeRecovered"; readonly node: Member }
  | { readonly type: "NodeUpdated"; readonly node: Member; readonly previousTags: Tags }
  | {
    readonly type: "PartitionDetected";
    readonly reachable: readonly string[];
    readonly unreachable: readonly string[];
  }
  | { readonly type: "PartitionHealed"; readonly members: readonly string[] };

/** The names of every {@linkcode ClusterEvent}. */
export type ClusterEventType = ClusterEvent["type"];

/**
 * The read side of membership that registries build on. `ClusterMembership` implements it; tests
 * may substitute a fake.
 */
export interface MembershipView {
  /** This node's own id. */
  readonly localId: string;
  /** A snapshot of every known member (including this node and tombstones not yet reaped). */
  members(): Member[];
  /** One member by id. */
  get(id: string): Member | undefined;
  /**
   * An async iterator of events from now on. Each subscriber has a bounded buffer; when it is
   * full, events are dropped and counted rather than stalling the protocol. `return()` (or
   * `break`ing a `for await`) unsubscribes.
   */
  subscribe(options?: { bufferSize?: number }): AsyncIterableIterator<ClusterEvent>;
  /** EventTarget form of the same events: `addEventListener("NodeJoined", (e) => e.detail)`. */
  addEventListener(
    type: ClusterEventType,
    listener: (event: CustomEvent<ClusterEvent>) => void,
  ): void;
  /** Removes a listener added with `addEventListener`. */
  removeEventListener(
    type: ClusterEventType,
    listener: (event: CustomEvent<ClusterEvent>) => void,
  ): void;
}

/** Counters and gauges of one `ClusterMembership`. Counters only grow. */
export interface MembershipStats extends EnvelopeCounters {
  /** Pings for another member id (a reused address) ignored. */
  droppedMisdirected: number;
  /** Events emitted. */
  eventsEmitted: number;
  /** Events dropped because a subscriber's buffer was full. */
  eventsDropped: number;
  /** Probes started (round-robin and phi-triggered). */
  probes: number;
  /** Probes that went indirect. */
  indirectProbes: number;
  /** Probes that failed. */
  probeFailures: number;
  /** Nacks received. */
  nacksReceived: number;
  /** Ping-reqs served. */
  pingReqsServed: number;
  /** Fallback pings over the reliable channel (after a failed direct ping). */
  reliablePings: number;
  /** Heartbeat pings sent to monitored members. */
  heartbeats: number;
  /** Probes started because phi crossed the threshold. */
  phiProbes: number;
  /** Members this node saw become suspect. */
  suspicions: number;
  /** Independent suspicion confirmations counted. */
  confirmations: number;
  /** Times this node refuted a suspicion or death of itself. */
  refutations: number;
  /**
   * Alive messages naming a live member (or this node) at another gossip address: two
   * processes claim one id. The record already held is kept; the message is dropped.
   */
  idConflicts: number;
  /**
   * Suspect, dead or alive messages dropped for an incarnation 2^30 or more ahead of the one
   * held (forged: incarnations are compared as serial numbers, see `incarnation.ts`).
   */
  droppedIncarnation: number;
  /** New members refused because the table held `maxMembers` records. */
  droppedTableFull: number;
  /** Push-pull syncs (requests or replies) refused for carrying more than `maxSyncRecords`. */
  droppedSyncs: number;
  /** Push-pull exchanges completed (started here). */
  pushPulls: number;
  /** Push-pull exchanges that failed. */
  pushPullFailures: number;
  /** Push-pull exchanges served. */
  pushPullsServed: number;
  /** Membership broadcasts queued now. */
  broadcastQueue: number;
  /** User broadcasts queued now. */
  userBroadcastQueue: number;
  /** Broadcasts dropped because a queue was full. */
  broadcastsPruned: number;
  /** Lifeguard local health score now (0 = healthy). */
  awareness: number;
  /** This node's incarnation now. */
  incarnation: number;
  /** Records held, tombstones included. */
  members: number;
  /** Live (alive or suspect) members, this node included. */
  liveMembers: number;
  /** Partitions detected. */
  partitionsDetected: number;
  /** Partitions healed. */
  partitionsHealed: number;
  /** Members declared dead held on the reconnect list now (see `reconnectTimeoutMs`). */
  reconnectList: number;
  /** Reconnect exchanges started with members declared dead. */
  reconnectAttempts: number;
  /** Reconnect exchanges that reached the member. */
  reconnects: number;
  /** Failed members dropped from the reconnect list (timed out or over the cap). */
  reconnectsExpired: number;
  /** Re-joins of the seeds made while the view was partitioned (or this node alone). */
  seedRejoins: number;
  /**
   * Suspect/dead verdicts learnt from a sync about members this node holds alive, checked with
   * a ping of its own (carrying the verdict, so the member refutes) instead of a suspicion.
   */
  verdictChecks: number;
  /** Join attempts (each over every resolved seed address). */
  joinAttempts: number;
  /** 1 once joined (see `whenJoined()`), else 0. */
  joined: number;
  /** Reliable-channel (TCP) streams refused at accept (caps reached, none evictable); 0 for other transports. */
  streamsRefused: number;
  /** Reliable-channel streams closed before their header to make room; 0 for other transports. */
  streamsEvicted: number;
  /** Reliable-channel streams closed for not sending their header in time; 0 for other transports. */
  streamHeaderTimeouts: number;
}
