/**
 * `rpcnet keygen`: a random gossip encryption key, base64, for a keyring file.
 *
 * @module
 */

import { type Io, parseFlags, str, UsageError } from "./common.ts";

/** Help of `rpcnet keygen`. */
export const KEYGEN_HELP = `usage: rpcnet keygen [--bytes 32|16]

Prints a random gossip encryption key (AES-256 by default) in base64. Put one key per line in
a keyring file (the first line is the key that encrypts) and give it to every agent with
--keyring-file or RPCNET_KEYRING_FILE.

Options:
  --bytes N          32 (AES-256, default) or 16 (AES-128)
  -h, --help         this help`;

/** Runs `rpcnet keygen`; returns the exit code. */
export function keygenCommand(args: string[], io: Io): number {
  const p = parseFlags(args, { bytes: { type: "string" } }, 0);
  if (p.values.help) {
    io.out(KEYGEN_HELP + "\n");
    return 0;
  }
  const bytes = str(p, "bytes") ?? "32";
  if (bytes !== "32" && bytes !== "16") {
    throw new UsageError(`--bytes must be 16 or 32, got '${bytes}'`);
  }
  const key = crypto.getRandomValues(new Uint8Array(Number(bytes)));
  io.out(btoa(String.fromCharCode(...key)) + "\n");
  return 0;
}
