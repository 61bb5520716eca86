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

// Each folder's public surface is its own mod.ts (as in Deno std); names that live outside a
// folder mod.ts, or beside folders that also hold internals, are listed here.
export * from "./src/rpc/mod.ts";
export * from "./src/registry/mod.ts";
export * from "./src/client/mod.ts";
export * from "./src/membership/mod.ts";
export * from "./src/detector/mod.ts";
export * from "./src/balance/mod.ts";
export * from "./src/observe/mod.ts";
export { RPC_ERROR_CODES, RpcError, type RpcErrorCode } from "./src/errors.ts";
export { missingNetApis, type NetApi, requireNetApis } from "./src/net_api.ts";
export { Keyring, KEYRING_OVERHEAD } from "./src/membership/keyring.ts";
export {
  UdpTransport,
  type UdpTransportOptions,
  type UdpTransportStats,
} from "./src/membership/udp_transport.ts";
export { advertiseHostFor, checkAdvertiseHost, type InterfaceAddress } from "./src/advertise.ts";
export {
  formatHostPort,
  type HostPort,
  isWildcard,
  parseHostPort,
  requireHostPort,
} from "./src/addr.ts";
export {
  ADMIN_METHODS,
  type AdminEvent,
  type AdminHealth,
  type AdminMember,
  type AdminMembers,
  type AdminStats,
  type ServedCallStats,
} from "./src/client/admin.ts";
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
export { logMembership, type MembershipLogOptions } from "./src/observe/member_log.ts";
