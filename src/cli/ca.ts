/**
 * `rpcnet ca create` and `rpcnet ca issue`: a certificate authority for a cluster and node
 * certificates signed by it, as PEM files (private keys with mode 0600).
 *
 * @module
 */

import { isIP } from "node:net";
import { createDevCa, issueDevCertificate } from "../rpc/certs.ts";
import { bool, type Io, parseFlags, str, strs, toJson, UsageError } from "./common.ts";
import { keyPathFor, readSigningCa, writeNew } from "./tls_files.ts";

/** Help of `rpcnet ca`. */
export const CA_HELP = `usage: rpcnet ca create [--out FILE] [--force] [--json]
       rpcnet ca issue --name NAME [--ip IP]… [--dns NAME]… [--ca FILE] [--out FILE] [--force]

create   writes a new certificate authority (ECDSA P-256, valid 10 years):
         FILE (default rpcnet-ca.pem, mode 0644) and FILE-key.pem (mode 0600). Give FILE to
         every agent and tool with --ca; agents sign their own certificate with the key.
issue    writes a node certificate signed by the CA (valid 825 days) for NAME and the given
         IP addresses and DNS names: FILE (default NAME.pem) and FILE-key.pem (mode 0600),
         for 'rpcnet agent --cert FILE --key FILE-key.pem --ca rpcnet-ca.pem'.

Options:
  --out FILE         certificate file to write (the key goes next to it, -key.pem)
  --force            replace existing files
  --name NAME        (issue) the certificate's name, also a DNS name it covers
  --ip IP            (issue) an IP address the certificate covers (repeatable)
  --dns NAME         (issue) another DNS name it covers (repeatable)
  --ca FILE          (issue) the CA (default rpcnet-ca.pem; env RPCNET_CA)
  --ca-key FILE      (issue) the CA key (default: FILE-key.pem next to --ca)
  --json             print the written paths as JSON
  -h, --help         this help`;

/** Runs `rpcnet ca …`; returns the exit code. */
export async function caCommand(args: string[], io: Io): Promise<number> {
  const p = parseFlags(args, {
    out: { type: "string" },
    force: { type: "boolean" },
    name: { type: "string" },
    ip: { type: "string", multiple: true },
    dns: { type: "string", multiple: true },
    ca: { type: "string" },
    "ca-key": { type: "string" },
    json: { type: "boolean" },
  }, 1);
  const sub = p.positionals[0];
  if (p.values.help || sub === undefined) {
    io.out(CA_HELP + "\n");
    return sub === undefined && !p.values.help ? 2 : 0;
  }
  const force = bool(p, "force");
  let certPath: string, certPem: string, keyPem: string;
  if (sub === "create") {
    for (const f of ["name", "ip", "dns", "ca", "ca-key"]) {
      if (p.values[f] !== undefined) {
        throw new UsageError(`--${f} is for 'ca issue', not 'ca create'`);
      }
    }
    certPath = str(p, "out") ?? "rpcnet-ca.pem";
    ({ certPem, keyPem } = await createDevCa());
  } else if (sub === "issue") {
    const name = str(p, "name");
    if (name === undefined || name === "") {
      throw new UsageError("--name is required for 'ca issue'");
    }
    const ips = strs(p, "ip");
    for (const ip of ips) {
      if (isIP(ip) === 0) throw new UsageError(`--ip must be an IP address, got '${ip}'`);
    }
    const dns = strs(p, "dns");
    for (const d of [name, ...dns]) {
      if (!/^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(d)) {
        throw new UsageError(`--${d === name ? "name" : "dns"} must be a DNS name, got '${d}'`);
      }
    }
    const caPath = str(p, "ca") ?? io.env("RPCNET_CA") ?? "rpcnet-ca.pem";
    const ca = await readSigningCa(caPath, str(p, "ca-key"), "--ca", "--ca-key");
    const tls = await issueDevCertificate(ca, [...new Set([name, ...dns, ...ips])]);
    certPath = str(p, "out") ?? `${name}.pem`;
    ({ certPem, keyPem } = tls);
  } else {
    throw new UsageError(`unknown 'ca' subcommand '${sub}' (create or issue)`);
  }
  const keyPath = keyPathFor(certPath);
  for (const path of force ? [] : [keyPath, certPath]) {
    const exists = await Deno.lstat(path).then(() => true, () => false);
    if (exists) throw new UsageError(`'${path}' already exists (pass --force to replace it)`);
  }
  // The key first: a half-written pair never leaves a certificate without its key.
  await writeNew(keyPath, keyPem, 0o600, force);
  await writeNew(certPath, certPem, 0o644, force);
  if (bool(p, "json")) io.out(toJson({ cert: certPath, key: keyPath }) + "\n");
  else io.out(`wrote ${certPath} (certificate) and ${keyPath} (private key, mode 0600)\n`);
  return 0;
}
