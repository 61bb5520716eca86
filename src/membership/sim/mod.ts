/**
 * The membership simulator: virtual time, an in-memory network, and `simulate()` which runs many
 * `ClusterMembership` instances over them.
 *
 * @module
 */
export { SeededRandom } from "./rng.ts";
export {
  NodeClock,
  SOCKET_BUFFER_PACKETS,
  VirtualClock,
  type VirtualClockOptions,
} from "./virtual_clock.ts";
export {
  SimNetwork,
  type SimNetworkOptions,
  type SimTrafficStats,
  SimTransport,
} from "./network.ts";
export {
  type SimMember,
  type SimMemberConfig,
  type SimMemberFactory,
  type SimOptions,
} from "./harness.ts";
export {
  formatSimReport,
  SIM_SCENARIOS,
  type SimDistribution,
  type SimReport,
  type SimScenario,
} from "./report.ts";
export { simulate } from "./simulator.ts";
