/**
 * The shapes membership shares with the layers above it (registry, client).
 *
 * @module
 */

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
