/**
 * NodeRegistry: the read-only view of every node in the cluster, its health and its tags.
 *
 * @module
 */

import type {
  ClusterEvent,
  ClusterEventType,
  Member,
  MembershipView,
  MemberState,
} from "../membership/types.ts";
import { type FilterInput, parseFilter } from "./filter.ts";

/** Options of {@linkcode NodeRegistry.nodes}. */
export interface NodeQuery {
  /** Only nodes whose tags pass this filter. Default: every node. */
  filter?: FilterInput;
  /** Only nodes in one of these states. Default: every state (tombstones included). */
  states?: readonly MemberState[];
}

/**
 * Every node the local member knows about, with its SWIM state, phi and tags, plus the cluster's
 * event stream. A thin, allocation-light layer over a {@linkcode MembershipView}
 * (`ClusterMembership` or a test fake).
 *
 * @example
 * ```ts
 * import { ClusterMembership, NodeRegistry } from "@rpcnet/cluster";
 *
 * const cluster = new ClusterMembership({ profile: "LOCAL" });
 * await cluster.start();
 * const registry = new NodeRegistry(cluster);
 * for (const node of registry.nodes()) console.log(node.id, node.state, node.phi, node.tags);
 * for await (const event of registry.subscribe()) {
 *   if (event.type === "NodeJoined") console.log("Node joined:", event.node.id);
 *   if (event.type === "NodeFailed") console.log("Node failed:", event.node.id);
 * }
 * ```
 */
export class NodeRegistry {
  /** The membership this registry reads. */
  readonly membership: MembershipView;

  /**
   * Creates a registry over `membership`.
   *
   * @param membership the membership to read (usually a started `ClusterMembership`)
   */
  constructor(membership: MembershipView) {
    this.membership = membership;
  }

  /** This node's id. */
  get localId(): string {
    return this.membership.localId;
  }

  /**
   * A snapshot of the known nodes, sorted by id.
   *
   * @param query optional tag filter and state set
   * @returns the matching members (state, phi, tags, addresses)
   * @throws {RpcError} `invalid_argument` for a malformed filter
   */
  nodes(query: NodeQuery = {}): Member[] {
    const filter = parseFilter(query.filter);
    const states = query.states;
    return this.membership.members()
      .filter((m) => (!states || states.includes(m.state)) && filter.matches(m.tags))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Nodes that are alive (not suspect, dead or left), optionally filtered by tags. */
  alive(filter?: FilterInput): Member[] {
    return this.nodes({ filter, states: ["alive"] });
  }

  /** One node by id, or `undefined` when unknown (or already reaped). */
  get(id: string): Member | undefined {
    return this.membership.get(id);
  }

  /** How many nodes are known, in any state. */
  get count(): number {
    return this.membership.members().length;
  }

  /**
   * Cluster events from now on, as an async iterator; `break` out of the loop to unsubscribe.
   *
   * @param options `bufferSize`: events kept for a slow consumer before further ones are dropped
   */
  subscribe(options?: { bufferSize?: number }): AsyncIterableIterator<ClusterEvent> {
    return this.membership.subscribe(options);
  }

  /** Listens for one event type (synchronously dispatched). */
  addEventListener(
    type: ClusterEventType,
    listener: (event: CustomEvent<ClusterEvent>) => void,
  ): void {
    this.membership.addEventListener(type, listener);
  }

  /** Removes a listener added with {@linkcode NodeRegistry.addEventListener}. */
  removeEventListener(
    type: ClusterEventType,
    listener: (event: CustomEvent<ClusterEvent>) => void,
  ): void {
    this.membership.removeEventListener(type, listener);
  }
}
