/**
 * Deno's QUIC and UDP APIs are unstable: without `--unstable-net` (or `"unstable": ["net"]` in
 * `deno.json`) `Deno.QuicEndpoint`, `Deno.connectQuic` and `Deno.listenDatagram` are simply
 * missing, and using them fails with "is not a constructor". This check turns that into an error
 * that says what to do.
 *
 * @module
 */

import { RpcError } from "./errors.ts";

/** The unstable Deno network APIs the package uses. */
export type NetApi = "quic" | "udp";

/** Which of `apis` are missing from this Deno runtime (empty when all are there). */
export function missingNetApis(apis: readonly NetApi[] = ["quic", "udp"]): string[] {
  // Read through a loose view: the type declarations claim these exist even when they do not.
  const d = Deno as unknown as Record<string, unknown>;
  const missing: string[] = [];
  if (apis.includes("quic")) {
    if (typeof d.QuicEndpoint !== "function") missing.push("Deno.QuicEndpoint");
    if (typeof d.connectQuic !== "function") missing.push("Deno.connectQuic");
  }
  if (apis.includes("udp") && typeof d.listenDatagram !== "function") {
    missing.push("Deno.listenDatagram");
  }
  return missing;
}

/**
 * Throws `failed_precondition` naming the flag to add when Deno's QUIC or UDP API is missing.
 *
 * @param who what needs the API, for the message (e.g. `"Node.start"`)
 * @param apis which APIs it needs (default both)
 * @throws {RpcError} `failed_precondition` when any of them is missing
 */
export function requireNetApis(who: string, apis: readonly NetApi[] = ["quic", "udp"]): void {
  const missing = missingNetApis(apis);
  if (missing.length === 0) return;
  throw new RpcError(
    "failed_precondition",
    `${who}: Deno's unstable network API is not enabled (${missing.join(", ")} missing): ` +
      `run with --unstable-net (e.g. "deno run -A --unstable-net main.ts"), or add ` +
      `"unstable": ["net"] to deno.json`,
  );
}
