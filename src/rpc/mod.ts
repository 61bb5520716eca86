/**
 * RPC over QUIC: `RpcServer`, `RpcClient`, development certificates and the wire constants.
 *
 * @module
 */

export { RpcServer } from "./server.ts";
export { RpcClient } from "./client.ts";
export { EncodedPayload } from "./encoded.ts";
export {
  createDevCa,
  defaultDevCa,
  type DevCa,
  devCertificateNames,
  explainTlsFailure,
  issueDevCertificate,
  loadDevCa,
  saveDevCa,
  type TlsConfig,
} from "./certs.ts";
export { RPC_ALPN, RPC_CLOSE_CODES } from "./frames.ts";
export type { PayloadLimitOptions } from "./payload_limits.ts";
export type {
  BidiStreamHandler,
  CallContext,
  CallOptions,
  ClientStreamHandler,
  FallbackHandler,
  FallbackOptions,
  Handler,
  RegisterOptions,
  RpcClientOptions,
  RpcClientStats,
  RpcServerOptions,
  RpcServerStats,
  ServerStreamHandler,
} from "./types.ts";
