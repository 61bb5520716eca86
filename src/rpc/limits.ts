/**
 * Every default limit of the RPC layer in one place, shared by `RpcServer` and `RpcClient`
 * (so the client does not import the server for them). Each is overridable by the option named
 * in its comment.
 *
 * @module
 */

/** Largest frame, in bytes after the length prefix (option `maxFrameBytes`): 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** The largest `maxFrameBytes` accepted: the u32 length prefix minus headroom. */
export const MAX_FRAME_LIMIT = 0xffff_ffff - 16;
/** Nesting depth of a decoded payload (option `maxPayloadDepth`). */
export const DEFAULT_MAX_PAYLOAD_DEPTH = 100;
/** Array elements plus map entries in one decoded payload (option `maxPayloadElements`). */
export const DEFAULT_MAX_PAYLOAD_ELEMENTS = 1_000_000;
/**
 * Concurrent QUIC streams a client may open on one connection (option
 * `maxStreamsPerConnection`): lanes plus streaming calls. Measured, an open stream costs the
 * server about 30 KiB (mostly in Deno's QUIC), so 1,024 idle streams held about 30 MiB.
 */
export const DEFAULT_MAX_STREAMS = 128;
/** Lanes one connection may open (option `maxLanesPerConnection`); the client's `lanes` cap. */
export const DEFAULT_MAX_LANES = 16;
/** Connections a server holds at once (option `maxConnections`). */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/**
 * Bytes of partly received frames a connection may hold in the server's buffers (option
 * `maxBufferedBytesPerConnection`): 32 MiB, two frames of the default largest size.
 */
export const DEFAULT_MAX_BUFFERED_BYTES = 32 * 1024 * 1024;
/**
 * Bytes of partly received frames all connections together may hold (option
 * `maxBufferedBytes`): 40 MiB, so that many connections cannot multiply the per-connection
 * budget.
 */
export const DEFAULT_MAX_BUFFERED_BYTES_TOTAL = 40 * 1024 * 1024;
/** Time to complete a frame once its header arrived (option `frameTimeoutMs`). */
export const DEFAULT_FRAME_TIMEOUT_MS = 30_000;
/**
 * Streams a connection may open before it proves the cluster secret: the client opens its
 * express lane there (fixed; a legitimate client needs one).
 */
export const PRE_AUTH_STREAMS = 2;
/** Largest frame read before authentication and on the control stream. */
export const CONTROL_MAX_FRAME = 4096;
