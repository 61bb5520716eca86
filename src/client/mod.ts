/**
 * The cluster client: load-balanced calls to workers with failover, retry budgets and outlier
 * ejection, the Director that forwards calls for clients outside the gossip, and Node.
 *
 * @module
 */

export { type EjectionTarget, OutlierDetector, type OutlierOptions } from "./outlier.ts";
export { RetryBudget, type RetryBudgetOptions } from "./retry_budget.ts";
