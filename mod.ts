/**
 * `@rpcnet/cluster`: distributed RPC clusters for Deno. Nodes discover each other with SWIM
 * gossip, detect failures with phi accrual, and route calls to workers by tag through a load
 * balancer; RPC rides on QUIC.
 *
 * Layers, each usable on its own: `RpcServer`/`RpcClient` (QUIC), `ClusterMembership` (SWIM +
 * Lifeguard over UDP), `PhiAccrualDetector` and `Balancer` (the wasm core), `NodeRegistry`/
 * `WorkerRegistry` (tag filters, selection), `ClusterClient`/`Director`, and `Node`, which runs an
 * RPC server and membership together.
 *
 * @example A worker and a caller in one script
 * ```ts
 * import { Node } from "@rpcnet/cluster";
 *
 * const director = await Node.start({ id: "director", tags: { role: "director" } });
 * const worker = await Node.start({
 *   tags: { role: "worker", zone: "eu-1" },
 *   seeds: [director.gossipAddr],
 *   handlers: { compute: (n) => (n as number) ** 2 },
 * });
 * // Once gossip has spread the worker's tags:
 * const square = await director.client.callWorker("compute", 7, {
 *   filter: "role=worker",
 *   idempotent: true,
 * });
 * await worker.leave();
 * await director.stop();
 * ```
 *
 * @module
 */

export { RPC_ERROR_CODES, RpcError, type RpcErrorCode } from "./src/errors.ts";
export {
  type BidiStreamHandler,
  type CallContext,
  type CallOptions,
  type ClientStreamHandler,
  createDevCa,
  defaultDevCa,
  type DevCa,
  devCertificateNames,
  EncodedPayload,
  explainTlsFailure,
  type FallbackHandler,
  type FallbackOptions,
  type Handler,
  issueDevCertificate,
  loadDevCa,
  type PayloadLimitOptions,
  type RegisterOptions,
  RPC_ALPN,
  RPC_CLOSE_CODES,
  RpcClient,
  type RpcClientOptions,
  type RpcClientStats,
  RpcServer,
  type RpcServerOptions,
  type RpcServerStats,
  saveDevCa,
  type ServerStreamHandler,
  type TlsConfig,
} from "./src/rpc/mod.ts";
export { missingNetApis, type NetApi, requireNetApis } from "./src/net_api.ts";
export { Keyring, KEYRING_OVERHEAD } from "./src/membership/keyring.ts";
export {
  describeFilter,
  type FilterClause,
  type FilterInput,
  type FilterObject,
  matchesFilter,
  type NodeQuery,
  NodeRegistry,
  parseFilter,
  type SelectOptions,
  type TagFilter,
  type Worker,
  type WorkerBalancer,
  type WorkerCandidateSet,
  WorkerRegistry,
  type WorkerRegistryOptions,
} from "./src/registry/mod.ts";
export { advertiseHostFor, checkAdvertiseHost, type InterfaceAddress } from "./src/advertise.ts";
export {
  formatHostPort,
  type HostPort,
  isWildcard,
  parseHostPort,
  requireHostPort,
} from "./src/addr.ts";
export {
  UdpTransport,
  type UdpTransportOptions,
  type UdpTransportStats,
} from "./src/membership/udp_transport.ts";
export {
  type CallAllOptions,
  type CallAllResult,
  ClusterClient,
  type ClusterClientOptions,
  type ClusterClientStats,
  type Connector,
  Director,
  type DirectorOptions,
  type EjectionTarget,
  type ForwardOptions,
  type ForwardUnknownOptions,
  type HedgingOptions,
  LatencyWindow,
  type Leavable,
  leaveOnSignals,
  type LeaveOnSignalsOptions,
  Node,
  type NodeOptions,
  OutlierDetector,
  type OutlierOptions,
  RetryBudget,
  type RetryBudgetOptions,
  type WorkerCallOptions,
  type WorkerCallStats,
  type WorkerStreamOptions,
} from "./src/client/mod.ts";
export {
  ADMIN_METHODS,
  type AdminEvent,
  type AdminHealth,
  type AdminMember,
  type AdminMembers,
  type AdminStats,
  type ServedCallStats,
} from "./src/client/admin.ts";
export * from "./src/membership/sim/mod.ts";
export type { Clock, PacketHandler, StreamHandler, Transport } from "./src/membership/transport.ts";
export {
  MAX_SAMPLE_SIZE,
  PHI_ACCRUAL_DEFAULTS,
  PhiAccrualDetector,
  type PhiAccrualOptions,
  type PhiEstimate,
  type PhiMemberOptions,
} from "./src/detector/mod.ts";
export {
  Balancer,
  type BalancerOptions,
  type CandidateSet,
  fmix32,
  fnv1a32,
  MAX_BALANCER_MEMBERS,
  STRATEGIES,
  type StrategyName,
} from "./src/balance/mod.ts";
export {
  ClusterMembership,
  type ClusterMembershipOptions,
  failureDetectionBoundMs,
  type JoinState,
  type JoinStatus,
  type MembershipConfig,
  type MembershipStats,
  type MembershipSwitches,
  type MembershipTimings,
  type PhiDetector,
  type Profile,
  PROFILES,
  pushPullIntervalMs,
  resolveConfig,
  type ResolvedConfig,
  retransmitLimit,
  suspicionTimeout,
  suspicionTimeoutMs,
  systemClock,
} from "./src/membership/mod.ts";
export type {
  ClusterEvent,
  ClusterEventType,
  Member,
  MembershipView,
  MemberState,
  Tags,
} from "./src/membership/types.ts";
export {
  createLogger,
  defaultLogger,
  formatJsonLine,
  jsonLogger,
  LOG_LEVELS,
  type LogFields,
  type Logger,
  type LogLevel,
  LogRateLimiter,
  type LogRecord,
  type LogSink,
  silentLogger,
} from "./src/logger.ts";
export type { ServerCall, ServerInterceptor, ServerNext } from "./src/rpc/intercept.ts";
export type { ClientCall, ClientInterceptor, ClientNext } from "./src/client/intercept.ts";
export * from "./src/observe/mod.ts";
export { logMembership, type MembershipLogOptions } from "./src/observe/member_log.ts";
