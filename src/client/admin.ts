/**
 * The admin service: a reserved, read-only method family every `Node` answers on its RPC port,
 * so a tool (the `rpcnet` command) looks at a cluster through any one node's address with a
 * plain `RpcClient`, without joining the gossip. It rides the RPC server, so it sits behind the
 * cluster secret like every other method.
 *
 * - `$cluster.members` (unary, request `{filter?}`): every member the node knows.
 * - `$cluster.stats` (unary): membership, server, client counters and the calls this node
 *   served (count, errors, latency histogram), cumulative; a viewer diffs two of them.
 * - `$cluster.events` (server stream): `subscribed`, then one message per membership event.
 * - `$cluster.health` (unary): this node's own state and local health score.
 *
 * @module
 */

import { RpcError } from "../errors.ts";
import { checkPlainObject, checkString } from "../options.ts";
import { observeServerCalls, registerReserved } from "../rpc/server.ts";
import type { CallContext, RpcServerStats } from "../rpc/types.ts";
import type { MembershipStats } from "../membership/membership.ts";
import type { ClusterEvent, Member, MemberState, Tags } from "../membership/types.ts";
import { parseFilter } from "../registry/filter.ts";
import type { ClusterClientStats } from "./cluster_client.ts";
import type { Node } from "./node.ts";

/** The admin service's method names. */
export const ADMIN_METHODS = {
  /** Unary: {@linkcode AdminMembers}. */
  members: "$cluster.members",
  /** Unary: {@linkcode AdminStats}. */
  stats: "$cluster.stats",
  /** Server stream of {@linkcode AdminEvent}. */
  events: "$cluster.events",
  /** Unary: {@linkcode AdminHealth}. */
  health: "$cluster.health",
} as const;

/** A member as the admin service reports it (JSON-safe). */
export interface AdminMember {
  /** Node id. */
  id: string;
  /** SWIM state. */
  state: MemberState;
  /** The member's incarnation number. */
  incarnation: number;
  /** Phi of the last heartbeat arrival at the answering node (0 when it does not monitor it). */
  phi: number;
  /** The member's tags. */
  tags: Tags;
  /** RPC address, `host:port` (empty when the node serves no RPC). */
  rpcAddr: string;
  /** Gossip address, `host:port`. */
  gossipAddr: string;
  /** Milliseconds since the answering node saw the member's state change. */
  sinceChangeMs: number;
  /** Whether this is the answering node itself. */
  local: boolean;
}

/** Reply of `$cluster.members`. */
export interface AdminMembers {
  /** Id of the answering node. */
  self: string;
  /** Every member it knows (tombstones not yet reaped included), sorted by id. */
  members: AdminMember[];
}

/**
 * The calls a node's user handlers served (admin calls excluded), cumulative since start.
 * Latency is sampled: at high rates about a thousand calls a second per handler are timed.
 */
export interface ServedCallStats {
  /** Handler calls finished. */
  calls: number;
  /** Of those, calls whose handler threw (or whose stream failed). */
  errors: number;
  /** Upper bounds of the latency buckets, ms; a last, unbounded bucket follows them. */
  latencyBoundsMs: number[];
  /** Timed calls per latency bucket (`latencyBoundsMs.length + 1` entries). */
  latencyCounts: number[];
}

/** Reply of `$cluster.stats`. */
export interface AdminStats {
  /** Id of the answering node. */
  id: string;
  /** Milliseconds since the node started. */
  uptimeMs: number;
  /** Membership counters and gauges. */
  membership: MembershipStats;
  /** RPC server counters. */
  server: RpcServerStats;
  /** The node's cluster client counters, per worker included. */
  client: ClusterClientStats;
  /** The calls this node's handlers served. */
  served: ServedCallStats;
}

/** Reply of `$cluster.health`. */
export interface AdminHealth {
  /** Id of the answering node. */
  id: string;
  /** `"ok"`, or `"degraded"` when Lifeguard's local health score is above 0. */
  status: "ok" | "degraded";
  /** The node's own state as it sees it. */
  state: MemberState;
  /** Lifeguard local health score (0 = healthy). */
  awareness: number;
  /** Live (alive or suspect) members, this node included. */
  liveMembers: number;
  /** Milliseconds since the node started. */
  uptimeMs: number;
}

/** A membership event as `$cluster.events` streams it (JSON-safe). */
export type AdminEvent =
  | { type: "subscribed"; self: string; at: number }
  | {
    type: "joined" | "left" | "failed" | "recovered";
    at: number;
    member: AdminMember;
  }
  | { type: "suspect"; at: number; member: AdminMember; phi: number }
  | { type: "updated"; at: number; member: AdminMember; previousTags: Tags }
  | { type: "partition"; at: number; reachable: string[]; unreachable: string[] }
  | { type: "healed"; at: number; members: string[] };

// Geometric latency buckets, 0.05 ms × 1.5^i up to about a minute: ~20 % error per quantile.
const LATENCY_BOUNDS_MS: number[] = Array.from(
  { length: 36 },
  (_, i) => Number((0.05 * 1.5 ** i).toPrecision(3)),
);

/** Counts the calls a node's user handlers serve and their latency (a fixed histogram). */
export class CallMeter {
  #calls = 0;
  #errors = 0;
  #counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);

  /** Records one finished call (the observer the RPC server reports to). */
  readonly record = (_method: string, durationMs: number | undefined, error: unknown): void => {
    this.#calls++;
    if (error !== undefined) this.#errors++;
    if (durationMs === undefined) return;
    // Binary search for the first bound >= durationMs.
    let lo = 0, hi = LATENCY_BOUNDS_MS.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (LATENCY_BOUNDS_MS[mid] < durationMs) lo = mid + 1;
      else hi = mid;
    }
    this.#counts[lo]++;
  };

  /** A snapshot of the counters. */
  snapshot(): ServedCallStats {
    return {
      calls: this.#calls,
      errors: this.#errors,
      latencyBoundsMs: LATENCY_BOUNDS_MS,
      latencyCounts: [...this.#counts],
    };
  }
}

/**
 * The latency quantile `q` (0..1) of a histogram: the upper bound of the bucket holding it
 * (`Infinity` for the last bucket), or `undefined` with no calls.
 */
export function latencyQuantile(
  boundsMs: readonly number[],
  counts: readonly number[],
  q: number,
): number | undefined {
  let total = 0;
  for (const c of counts) total += c;
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= rank) return i < boundsMs.length ? boundsMs[i] : Infinity;
  }
  return Infinity;
}

/** A member as the admin service reports it. */
export function toAdminMember(m: Member, localId: string, now: number): AdminMember {
  return {
    id: m.id,
    state: m.state,
    incarnation: m.incarnation,
    phi: Number.isFinite(m.phi) ? m.phi : 1e9,
    tags: { ...m.tags },
    rpcAddr: m.rpcAddr,
    gossipAddr: m.gossipAddr,
    sinceChangeMs: Math.max(0, now - m.stateChangedAt),
    local: m.id === localId,
  };
}

/** A membership event as `$cluster.events` streams it. */
export function toAdminEvent(e: ClusterEvent, localId: string, now: number): AdminEvent {
  switch (e.type) {
    case "NodeJoined":
      return { type: "joined", at: now, member: toAdminMember(e.node, localId, now) };
    case "NodeLeft":
      return { type: "left", at: now, member: toAdminMember(e.node, localId, now) };
    case "NodeFailed":
      return { type: "failed", at: now, member: toAdminMember(e.node, localId, now) };
    case "NodeRecovered":
      return { type: "recovered", at: now, member: toAdminMember(e.node, localId, now) };
    case "NodeSuspect":
      return {
        type: "suspect",
        at: now,
        member: toAdminMember(e.node, localId, now),
        phi: Number.isFinite(e.phi) ? e.phi : 1e9,
      };
    case "NodeUpdated":
      return {
        type: "updated",
        at: now,
        member: toAdminMember(e.node, localId, now),
        previousTags: { ...e.previousTags },
      };
    case "PartitionDetected":
      return {
        type: "partition",
        at: now,
        reachable: [...e.reachable],
        unreachable: [...e.unreachable],
      };
    case "PartitionHealed":
      return { type: "healed", at: now, members: [...e.members] };
  }
}

function membersRequest(request: unknown): string | undefined {
  if (request === undefined || request === null) return undefined;
  const r = checkPlainObject("$cluster.members request", request);
  return checkString("$cluster.members request.filter", r.filter, undefined);
}

// Events a slow viewer may fall behind by before they are dropped (counted in eventsDropped).
const EVENT_BUFFER = 1024;

/**
 * Registers the admin service on `node`'s RPC server and starts metering the calls its user
 * handlers serve. Called once by `Node.start`.
 */
export function serveAdmin(node: Node): void {
  const startedAt = Date.now();
  const meter = new CallMeter();
  const { membership, server } = node;
  observeServerCalls(server, meter.record);

  registerReserved(server, ADMIN_METHODS.members, "unary", (request): AdminMembers => {
    const filterText = membersRequest(request);
    const filter = filterText === undefined ? undefined : parseFilter(filterText);
    const now = Date.now();
    const self = membership.localId;
    const members = membership.members()
      .filter((m) => filter === undefined || filter.matches(m.tags))
      .map((m) => toAdminMember(m, self, now))
      .sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    return { self, members };
  });

  registerReserved(server, ADMIN_METHODS.stats, "unary", (): AdminStats => ({
    id: membership.localId,
    uptimeMs: Date.now() - startedAt,
    membership: membership.stats(),
    server: server.stats(),
    client: node.client.stats(),
    served: meter.snapshot(),
  }));

  registerReserved(server, ADMIN_METHODS.health, "unary", (): AdminHealth => {
    const s = membership.stats();
    return {
      id: membership.localId,
      status: s.awareness > 0 ? "degraded" : "ok",
      state: membership.localMember().state,
      awareness: s.awareness,
      liveMembers: s.liveMembers,
      uptimeMs: Date.now() - startedAt,
    };
  });

  registerReserved(
    server,
    ADMIN_METHODS.events,
    "serverStream",
    async function* (_request: unknown, ctx: CallContext): AsyncGenerator<AdminEvent> {
      let sub: AsyncIterableIterator<ClusterEvent>;
      try {
        sub = membership.subscribe({ bufferSize: EVENT_BUFFER });
      } catch (e) {
        throw RpcError.is(e) ? e : new RpcError("unavailable", "membership is not running");
      }
      // A subscription waits for the next event; end it when the viewer goes away.
      const stop = () => void sub.return?.();
      ctx.signal.addEventListener("abort", stop, { once: true });
      try {
        yield { type: "subscribed", self: membership.localId, at: Date.now() };
        for await (const e of sub) yield toAdminEvent(e, membership.localId, Date.now());
      } finally {
        ctx.signal.removeEventListener("abort", stop);
        stop();
      }
    },
  );
}
