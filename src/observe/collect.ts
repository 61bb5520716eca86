/**
 * Turns a node's counters into metric families at collection time: nothing is counted twice,
 * the hot paths keep incrementing the plain fields they always had, and a scrape (or an
 * OpenTelemetry export) reads them. Counters of `stats()` that this file does not name are
 * still exported, as `rpcnet_<layer>_<snake_case>` of type `untyped`, so a counter added to a
 * layer shows up without a change here.
 *
 * @module
 */

import type { MembershipStats } from "../membership/membership.ts";
import type { Member, MemberState } from "../membership/types.ts";
import type { RpcServerStats } from "../rpc/types.ts";
import type { ClusterClientStats } from "../client/cluster_client.ts";
import { type CallMetrics, LATENCY_BUCKETS_S, OUTCOME_CODES } from "./call_metrics.ts";

/** Label names and values of one sample. */
export type Labels = Readonly<Record<string, string>>;

/** One value of a counter, gauge or untyped family. */
export interface Sample {
  /** Labels (none: `{}`). */
  readonly labels: Labels;
  /** The value. */
  readonly value: number;
}

/** One histogram series. */
export interface HistogramSample {
  /** Labels (without `le`). */
  readonly labels: Labels;
  /** Cumulative counts per upper bound in {@linkcode LATENCY_BUCKETS_S}, then `+Inf`. */
  readonly buckets: readonly number[];
  /** Sum of observations, seconds. */
  readonly sum: number;
  /** Observations. */
  readonly count: number;
}

/** A named metric with its samples, as Prometheus and OpenTelemetry see it. */
export type MetricFamily =
  | {
    readonly name: string;
    readonly help: string;
    readonly type: "counter" | "gauge" | "untyped";
    readonly samples: readonly Sample[];
  }
  | {
    readonly name: string;
    readonly help: string;
    readonly type: "histogram";
    readonly unit: "seconds";
    readonly samples: readonly HistogramSample[];
  };

/** What metrics are collected from: a node's parts (each optional). */
export interface MetricSources {
  /** Membership: `stats()` and `members()`. */
  membership?: { stats(): MembershipStats; members(): Member[] };
  /** RPC server: `stats()`. */
  server?: { stats(): RpcServerStats };
  /** Cluster client: `stats()`. */
  client?: { stats(): ClusterClientStats };
  /** Per-method counters of served calls. */
  serverCalls?: CallMetrics;
  /** Per-method counters of `callWorker` calls. */
  clientCalls?: CallMetrics;
}

const STATES: readonly MemberState[] = ["alive", "suspect", "dead", "left"];
const NO_LABELS: Labels = Object.freeze({});

type Fam = { name: string; help: string; type: "counter" | "gauge" | "untyped"; samples: Sample[] };

function one(name: string, help: string, type: Fam["type"], value: number): Fam {
  return { name, help, type, samples: [{ labels: NO_LABELS, value }] };
}

function byLabel(
  name: string,
  help: string,
  type: Fam["type"],
  label: string,
  values: Record<string, number>,
): Fam {
  return {
    name,
    help,
    type,
    samples: Object.entries(values).map(([k, value]) => ({ labels: { [label]: k }, value })),
  };
}

/** `droppedDecode` → `dropped_decode`. */
export function snakeCase(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

/**
 * Exports the counters of `stats` that have no family of their own: the known counters (in
 * `counters`) as `rpcnet_<layer>_<snake>_total`, anything else (added to a layer after this
 * file was written) as `untyped`, so it is visible without a change here.
 */
function rest(
  layer: string,
  stats: object,
  used: ReadonlySet<string>,
  counters: ReadonlySet<string>,
  out: MetricFamily[],
): void {
  for (const [k, v] of Object.entries(stats)) {
    if (used.has(k) || typeof v !== "number") continue;
    if (counters.has(k)) {
      out.push(
        one(`rpcnet_${layer}_${snakeCase(k)}_total`, `${layer} stats().${k}.`, "counter", v),
      );
    } else {
      out.push(one(`rpcnet_${layer}_${snakeCase(k)}`, `${layer} stats().${k}.`, "untyped", v));
    }
  }
}

const MEMBERSHIP_COUNTERS = new Set([
  "unknownMessages",
  "handlerErrors",
  "eventsEmitted",
  "eventsDropped",
  "nacksReceived",
  "pingReqsServed",
  "reliablePings",
  "heartbeats",
  "phiProbes",
  "idConflicts",
  "broadcastsPruned",
  "partitionsDetected",
  "partitionsHealed",
]);
const SERVER_COUNTERS = new Set(["protocolErrors", "authFailures", "rejectedCalls"]);

const MEMBERSHIP_USED = new Set([
  "packetsIn",
  "packetsOut",
  "bytesIn",
  "bytesOut",
  "droppedDecode",
  "droppedAuth",
  "droppedLabel",
  "droppedVersion",
  "droppedMisdirected",
  "suspicions",
  "confirmations",
  "refutations",
  "pushPulls",
  "pushPullFailures",
  "pushPullsServed",
  "awareness",
  "probes",
  "indirectProbes",
  "probeFailures",
  "members",
  "liveMembers",
  "incarnation",
  "broadcastQueue",
  "userBroadcastQueue",
]);

function membershipFamilies(src: NonNullable<MetricSources["membership"]>, out: MetricFamily[]) {
  const s = src.stats();
  const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of src.members()) counts[m.state] = (counts[m.state] ?? 0) + 1;
  out.push({
    name: "rpcnet_members",
    help: "Members known to this node by SWIM state (this node included).",
    type: "gauge",
    samples: STATES.map((st) => ({ labels: { state: st }, value: counts[st] })),
  });
  out.push(
    one(
      "rpcnet_member_suspicions_total",
      "Members this node saw become suspect.",
      "counter",
      s.suspicions,
    ),
    one(
      "rpcnet_member_suspicion_confirmations_total",
      "Independent suspicion confirmations.",
      "counter",
      s.confirmations,
    ),
    one(
      "rpcnet_member_refutations_total",
      "Times this node refuted a suspicion of itself.",
      "counter",
      s.refutations,
    ),
    one(
      "rpcnet_local_health_score",
      "Lifeguard local health (awareness) score; 0 is healthy.",
      "gauge",
      s.awareness,
    ),
    one("rpcnet_incarnation", "This node's incarnation number.", "gauge", s.incarnation),
    byLabel(
      "rpcnet_gossip_bytes_total",
      "Gossip bytes sent and received.",
      "counter",
      "direction",
      {
        in: s.bytesIn,
        out: s.bytesOut,
      },
    ),
    byLabel(
      "rpcnet_gossip_datagrams_total",
      "Gossip datagrams sent and received.",
      "counter",
      "direction",
      {
        in: s.packetsIn,
        out: s.packetsOut,
      },
    ),
    byLabel(
      "rpcnet_gossip_dropped_total",
      "Gossip datagrams and syncs dropped, by reason.",
      "counter",
      "reason",
      {
        decode: s.droppedDecode,
        auth: s.droppedAuth,
        label: s.droppedLabel,
        version: s.droppedVersion,
        misdirected: s.droppedMisdirected,
      },
    ),
    byLabel(
      "rpcnet_gossip_push_pull_total",
      "Push-pull state syncs, by result.",
      "counter",
      "result",
      {
        ok: s.pushPulls,
        failed: s.pushPullFailures,
        served: s.pushPullsServed,
      },
    ),
    byLabel("rpcnet_gossip_probes_total", "Failure-detector probes, by kind.", "counter", "kind", {
      all: s.probes,
      indirect: s.indirectProbes,
      failed: s.probeFailures,
    }),
    byLabel("rpcnet_gossip_broadcast_queue", "Broadcasts queued now.", "gauge", "queue", {
      membership: s.broadcastQueue,
      user: s.userBroadcastQueue,
    }),
  );
  rest("membership", s, MEMBERSHIP_USED, MEMBERSHIP_COUNTERS, out);
}

const SERVER_USED = new Set(["connections", "connectionsTotal", "activeCalls", "callsTotal"]);

function serverFamilies(src: NonNullable<MetricSources["server"]>, out: MetricFamily[]) {
  const s = src.stats();
  out.push(
    one("rpcnet_rpc_server_connections", "RPC connections open now.", "gauge", s.connections),
    one(
      "rpcnet_rpc_server_connections_total",
      "RPC connections accepted.",
      "counter",
      s.connectionsTotal,
    ),
    one(
      "rpcnet_rpc_server_in_flight",
      "Calls running now (unary and streaming).",
      "gauge",
      s.activeCalls,
    ),
    one(
      "rpcnet_rpc_server_started_total",
      "Calls started (unary and streaming).",
      "counter",
      s.callsTotal,
    ),
  );
  rest("rpc_server", s, SERVER_USED, SERVER_COUNTERS, out);
}

const CLIENT_USED = new Set([
  "calls",
  "perWorker",
  "connections",
  "failed",
  "retries",
  "budgetExhausted",
  "ejections",
  "evictions",
]);

function clientFamilies(src: NonNullable<MetricSources["client"]>, out: MetricFamily[]) {
  const s = src.stats();
  const sel: Sample[] = [], fail: Sample[] = [], active: Sample[] = [];
  let inFlight = 0;
  for (const [worker, w] of Object.entries(s.perWorker)) {
    const labels = { worker };
    sel.push({ labels, value: w.calls });
    fail.push({ labels, value: w.failures });
    active.push({ labels, value: w.active });
    inFlight += w.active;
  }
  out.push(
    one(
      "rpcnet_client_calls_total",
      "Cluster client calls made, retries not counted.",
      "counter",
      s.calls,
    ),
    one(
      "rpcnet_client_failed_total",
      "Cluster client calls that ended in an error.",
      "counter",
      s.failed,
    ),
    one("rpcnet_client_retries_total", "Failover attempts.", "counter", s.retries),
    one(
      "rpcnet_client_retry_budget_exhausted_total",
      "Failovers refused: retry budget spent.",
      "counter",
      s.budgetExhausted,
    ),
    one("rpcnet_client_ejections_total", "Outlier ejections of workers.", "counter", s.ejections),
    one("rpcnet_client_connections", "Pooled connections open now.", "gauge", s.connections),
    one(
      "rpcnet_client_evictions_total",
      "Connections evicted (worker failed or left).",
      "counter",
      s.evictions,
    ),
    one("rpcnet_client_in_flight", "Attempts in flight now, all workers.", "gauge", inFlight),
    {
      name: "rpcnet_client_worker_selections_total",
      help: "Attempts sent to each worker.",
      type: "counter",
      samples: sel,
    },
    {
      name: "rpcnet_client_worker_failures_total",
      help: "Attempts that failed, per worker.",
      type: "counter",
      samples: fail,
    },
    {
      name: "rpcnet_client_worker_in_flight",
      help: "Attempts in flight now, per worker.",
      type: "gauge",
      samples: active,
    },
  );
  rest("client", s, CLIENT_USED, new Set(), out);
}

function callFamilies(side: "server" | "client", calls: CallMetrics, out: MetricFamily[]) {
  const counts: Sample[] = [], inFlight: Sample[] = [], hist: HistogramSample[] = [];
  for (const m of calls.methods()) {
    for (let i = 0; i < OUTCOME_CODES.length; i++) {
      if (m.outcomes[i] > 0) {
        counts.push({ labels: { method: m.method, code: OUTCOME_CODES[i] }, value: m.outcomes[i] });
      }
    }
    inFlight.push({ labels: { method: m.method }, value: m.inFlight });
    const buckets: number[] = [];
    let acc = 0;
    for (const c of m.latency.counts) buckets.push(acc += c);
    hist.push({
      labels: { method: m.method },
      buckets,
      sum: m.latency.sum,
      count: m.latency.count,
    });
  }
  const who = side === "server" ? "served" : "made through the cluster client";
  out.push(
    {
      name: `rpcnet_rpc_${side}_calls_total`,
      help: `Unary calls ${who}, by method and outcome code.`,
      type: "counter",
      samples: counts,
    },
    {
      name: `rpcnet_rpc_${side}_method_in_flight`,
      help: `Unary calls ${who} running now, by method.`,
      type: "gauge",
      samples: inFlight,
    },
    {
      name: `rpcnet_rpc_${side}_call_duration_seconds`,
      help: `Latency of unary calls ${who}, by method.`,
      type: "histogram",
      unit: "seconds",
      samples: hist,
    },
  );
}

/** Reads every source now and returns its metric families. */
export function collectMetrics(sources: MetricSources): MetricFamily[] {
  const out: MetricFamily[] = [];
  if (sources.membership) membershipFamilies(sources.membership, out);
  if (sources.server) serverFamilies(sources.server, out);
  if (sources.serverCalls) callFamilies("server", sources.serverCalls, out);
  if (sources.client) clientFamilies(sources.client, out);
  if (sources.clientCalls) callFamilies("client", sources.clientCalls, out);
  return out;
}

export { LATENCY_BUCKETS_S };
