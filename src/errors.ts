/**
 * Typed errors shared by every layer of the package.
 *
 * @module
 */

/**
 * The machine-readable reason an RPC (or a cluster operation) failed. `failed_precondition`: the
 * runtime or the system is not in a state the operation needs (e.g. Deno started without
 * `--unstable-net`); retrying will not help until that is fixed.
 */
export type RpcErrorCode =
  | "unavailable"
  | "deadline_exceeded"
  | "cancelled"
  | "not_found"
  | "invalid_argument"
  | "resource_exhausted"
  | "unauthenticated"
  | "internal"
  | "failed_precondition";

/** Every code an {@linkcode RpcError} may carry, in wire order (index = wire number). */
export const RPC_ERROR_CODES: readonly RpcErrorCode[] = [
  "unavailable",
  "deadline_exceeded",
  "cancelled",
  "not_found",
  "invalid_argument",
  "resource_exhausted",
  "unauthenticated",
  "internal",
  // Appended: the index is the wire number, so new codes only ever go at the end.
  "failed_precondition",
];

/**
 * An error with a {@linkcode RpcErrorCode}; the only error type the package's public API throws
 * for remote, network and input failures.
 *
 * @example
 * ```ts
 * import { RpcError } from "@rpcnet/cluster";
 *
 * try {
 *   throw new RpcError("not_found", "no handler for method 'compute'");
 * } catch (e) {
 *   if (e instanceof RpcError && e.code === "not_found") console.log(e.message);
 * }
 * ```
 */
export class RpcError extends Error {
  /** Why the call failed. */
  readonly code: RpcErrorCode;

  /**
   * Creates an error with a code.
   *
   * @param code why the call failed
   * @param message a human-readable explanation
   * @param options standard `ErrorOptions` (for `cause`)
   */
  constructor(code: RpcErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RpcError";
    this.code = code;
  }

  /** Whether `e` is an `RpcError` carrying `code`. */
  static is(e: unknown, code?: RpcErrorCode): e is RpcError {
    return e instanceof RpcError && (code === undefined || e.code === code);
  }
}
