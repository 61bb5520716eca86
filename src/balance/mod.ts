/**
 * Load balancing: strategies behind one small interface, selection in the wasm core.
 *
 * @module
 */
export {
  Balancer,
  type BalancerOptions,
  type CandidateSet,
  MAX_BALANCER_MEMBERS,
  MAX_TIE_STREAK,
  STRATEGIES,
  type StrategyName,
} from "./balancer.ts";
export { fmix32, fnv1a32 } from "./hash.ts";
