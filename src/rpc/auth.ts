/**
 * Cluster-secret authentication. Deno's QUIC has no client certificates, so a server with a
 * secret opens a control stream on each new connection and sends a random nonce; the client
 * answers HMAC-SHA256(secret, nonce || "rpcnet-auth"). The server verifies it (WebCrypto's
 * verify is constant-time) before it reads any call from that connection.
 *
 * @module
 */

import { RpcError } from "../errors.ts";

/** Bytes of the server's challenge nonce. */
export const NONCE_BYTES = 32;
const CONTEXT = new TextEncoder().encode("rpcnet-auth");

/** An imported HMAC key for a cluster secret. */
export type SecretKey = CryptoKey;

/**
 * Imports a cluster secret (a non-empty string or at least 16 bytes).
 *
 * @throws {RpcError} `invalid_argument` for an empty or too short secret
 */
export async function importSecret(secret: string | Uint8Array): Promise<SecretKey> {
  const raw = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  if (raw.length === 0 || (typeof secret !== "string" && raw.length < 16)) {
    throw new RpcError(
      "invalid_argument",
      "cluster secret must be a non-empty string or at least 16 bytes",
    );
  }
  return await crypto.subtle.importKey(
    "raw",
    raw as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

/** A fresh random challenge. */
export function newNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
}

function challenge(nonce: Uint8Array): Uint8Array<ArrayBuffer> {
  const msg = new Uint8Array(nonce.length + CONTEXT.length);
  msg.set(nonce);
  msg.set(CONTEXT, nonce.length);
  return msg;
}

/** The client's proof for `nonce`. */
export async function prove(key: SecretKey, nonce: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, challenge(nonce)));
}

/** Whether `proof` answers `nonce` under `key`. */
export function verifyProof(
  key: SecretKey,
  nonce: Uint8Array,
  proof: Uint8Array,
): Promise<boolean> {
  if (proof.length !== 32) return Promise.resolve(false);
  return crypto.subtle.verify("HMAC", key, proof as Uint8Array<ArrayBuffer>, challenge(nonce));
}
