/**
 * Call outcomes on the wire: `ERROR` frame bodies and QUIC close infos mapped to `RpcError`.
 *
 * @module
 */

import { RPC_ERROR_CODES, RpcError } from "../errors.ts";
import { decodeUtf8, encodeUtf8, RPC_CLOSE_CODES } from "./frames.ts";
import { explainTlsFailure } from "./certs.ts";

const MAX_MESSAGE_BYTES = 4096;

/** The `ERROR` body for `e`: an `RpcError` keeps its code, anything else becomes `internal`. */
export function errorBody(e: unknown): Uint8Array {
  const err = RpcError.is(e)
    ? e
    : new RpcError("internal", e instanceof Error ? e.message : String(e));
  let msg = encodeUtf8(err.message);
  if (msg.length > MAX_MESSAGE_BYTES) msg = msg.subarray(0, MAX_MESSAGE_BYTES);
  const body = new Uint8Array(1 + msg.length);
  body[0] = RPC_ERROR_CODES.indexOf(err.code);
  body.set(msg, 1);
  return body;
}

/** Parses an `ERROR` body; unknown codes become `internal`. */
export function parseErrorBody(body: Uint8Array): RpcError {
  const code = RPC_ERROR_CODES[body[0]] ?? "internal";
  let msg: string;
  try {
    msg = decodeUtf8(body.subarray(1));
  } catch {
    msg = "(undecodable message)";
  }
  return new RpcError(code, msg);
}

/** The error a client reports for a connection that closed with `info` (or failed with `e`). */
export function closeError(info: Deno.QuicCloseInfo | undefined, e?: unknown): RpcError {
  if (info?.closeCode === RPC_CLOSE_CODES.UNAUTHENTICATED) {
    return new RpcError("unauthenticated", `server rejected the connection: ${info.reason}`);
  }
  if (info) {
    return new RpcError(
      "unavailable",
      `connection closed (code ${info.closeCode}${info.reason ? `: ${info.reason}` : ""})`,
    );
  }
  const text = e instanceof Error ? e.message : String(e);
  const tls = explainTlsFailure(text);
  if (tls !== undefined) {
    return new RpcError("unavailable", `TLS handshake failed: ${tls} (${text})`, { cause: e });
  }
  return new RpcError("unavailable", `connection lost: ${text}`, { cause: e });
}
