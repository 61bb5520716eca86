/**
 * Registries over cluster membership: every node ({@linkcode NodeRegistry}), load-balanced
 * workers ({@linkcode WorkerRegistry}), and the tag filters that select them.
 *
 * @module
 */

export {
  describeFilter,
  type FilterClause,
  type FilterInput,
  type FilterObject,
  matchesFilter,
  parseFilter,
  type TagFilter,
} from "./filter.ts";
export { type NodeQuery, NodeRegistry } from "./node_registry.ts";
export {
  type SelectOptions,
  type Worker,
  type WorkerBalancer,
  type WorkerCandidateSet,
  WorkerRegistry,
  type WorkerRegistryOptions,
} from "./worker_registry.ts";
