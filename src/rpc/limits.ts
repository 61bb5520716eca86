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
