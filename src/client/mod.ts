/**
 * The cluster client: load-balanced calls to workers with failover, retry budgets and outlier
 * ejection, the Director that forwards calls for clients outside the gossip, and Node.
 *
 * @module
 */

export {
  type CallAllOptions,
  type CallAllResult,
  ClusterClient,
  type ClusterClientOptions,
  type ClusterClientStats,
  type HedgingOptions,
  type WorkerCallOptions,
  type WorkerCallStats,
  type WorkerStreamOptions,
} from "./cluster_client.ts";
export {
  Director,
  type DirectorOptions,
  type ForwardOptions,
  type ForwardUnknownOptions,
} from "./director.ts";
export { Node, type NodeOptions } from "./node.ts";
export { LatencyWindow } from "./latency_window.ts";
export { type Connector } from "./pool.ts";
export { type EjectionTarget, OutlierDetector, type OutlierOptions } from "./outlier.ts";
export { RetryBudget, type RetryBudgetOptions } from "./retry_budget.ts";
export { type Leavable, leaveOnSignals, type LeaveOnSignalsOptions } from "./lifecycle.ts";
