/**
 * Checks of the RPC layer's own option types (secret, TLS material, CA, call options), built on
 * the shared checks of `src/options.ts`: each bad value is `invalid_argument` naming the option
 * as the user wrote it, never a raw `TypeError` from deep inside WebCrypto or QUIC.
 *
 * @module
 */

import { checkBoolean, checkDurationMs, checkPlainObject, invalidOption } from "../options.ts";
import type { CallOptions } from "./types.ts";

/** Checks a cluster secret: a non-empty string or a `Uint8Array` of at least 16 bytes. */
export function checkSecret(name: string, v: unknown): void {
  if (v === undefined) return;
  if (typeof v === "string" ? v.length > 0 : v instanceof Uint8Array && v.length >= 16) return;
  throw invalidOption(name, "a non-empty string or a Uint8Array of at least 16 bytes", v);
}

/** Checks an object of PEM strings with the fields `fields` (a `TlsConfig` or `DevCa`). */
export function checkPems(name: string, v: unknown, fields: readonly string[]): void {
  if (v === undefined) return;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw invalidOption(name, `an object with PEM strings ${fields.join(", ")}`, v);
  }
  for (const f of fields) {
    const pem = (v as Record<string, unknown>)[f];
    if (typeof pem !== "string" || !pem.includes("-----BEGIN")) {
      throw invalidOption(`${name}.${f}`, "a PEM string", pem);
    }
  }
}

/**
 * Checks per-call options once per call (skipped when there are none): `timeoutMs` must fit a
 * timer (below 2^31 ms; more would fire at once), `signal` must be an `AbortSignal`, `meta` a
 * plain object.
 *
 * @throws {RpcError} `invalid_argument` naming the option
 */
export function checkCallOptions(o: CallOptions): void {
  if (typeof o !== "object" || o === null) throw invalidOption("options", "an object", o);
  checkDurationMs("timeoutMs", o.timeoutMs, 0);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw invalidOption("signal", "an AbortSignal", o.signal);
  }
  if (o.meta !== undefined) checkPlainObject("meta", o.meta);
  checkBoolean("encoded", o.encoded, false);
}
