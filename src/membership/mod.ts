/**
 * SWIM gossip membership with Lifeguard, phi-accrual ring monitors, push-pull anti-entropy,
 * partition detection and AES-GCM sealed gossip.
 *
 * @module
 */
export {
  ClusterMembership,
  type ClusterMembershipOptions,
  type MembershipStats,
} from "./membership.ts";
export type { EnvelopeCounters } from "./envelope.ts";
export {
  failureDetectionBoundMs,
  type MembershipConfig,
  type MembershipSwitches,
  type MembershipTimings,
  type Profile,
  PROFILES,
  pushPullIntervalMs,
  resolveConfig,
  type ResolvedConfig,
  retransmitLimit,
  suspicionTimeoutMs,
} from "./config.ts";
export { suspicionTimeout } from "./suspicion.ts";
export type { JoinState, JoinStatus } from "./join.ts";
export { systemClock } from "./clock.ts";
export type { PhiDetector } from "./monitors.ts";
export type {
  ClusterEvent,
  ClusterEventType,
  Member,
  MembershipView,
  MemberState,
  Tags,
} from "./types.ts";
export type { Clock, PacketHandler, StreamHandler, Transport } from "./transport.ts";
