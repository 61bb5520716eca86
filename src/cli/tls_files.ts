/**
 * The files the command line reads and writes: CA and certificate PEMs (`rpcnet ca`), the CA
 * file `--ca` names (PEM, or the JSON `{certPem, keyPem}` the examples write), and keyring files
 * (`rpcnet keygen` keys, one base64 key per line, the first one primary).
 *
 * Private keys are written with mode 0600 and never overwritten without `--force`.
 *
 * @module
 */

import type { DevCa } from "../rpc/certs.ts";
import { Keyring } from "../membership/keyring.ts";
import { UsageError } from "./common.ts";

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----\r?\n?/g;

/** The PEM blocks of `text` by label (`CERTIFICATE`, `PRIVATE KEY`), in order. */
export function pemBlocks(text: string): { label: string; pem: string }[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({
    label: m[1],
    pem: m[0].endsWith("\n") ? m[0] : m[0] + "\n",
  }));
}

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`${flag}: cannot read '${path}': ${(e as Error).message}`);
  }
}

interface CaFileContent {
  certPem: string;
  keyPem?: string;
}

function parseCaText(text: string, path: string, flag: string): CaFileContent {
  if (text.trimStart().startsWith("{")) {
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`${flag}: '${path}' is not valid JSON: ${(e as Error).message}`);
    }
    const o = j as Record<string, unknown>;
    if (typeof o?.certPem !== "string") {
      throw new UsageError(`${flag}: '${path}' has no "certPem" string`);
    }
    return { certPem: o.certPem, keyPem: typeof o.keyPem === "string" ? o.keyPem : undefined };
  }
  const blocks = pemBlocks(text);
  const cert = blocks.find((b) => b.label === "CERTIFICATE");
  if (!cert) throw new UsageError(`${flag}: '${path}' holds no PEM CERTIFICATE`);
  const key = blocks.find((b) => b.label === "PRIVATE KEY");
  return { certPem: cert.pem, keyPem: key?.pem };
}

/** The CA certificate (PEM) of a `--ca` file. */
export async function readCaCert(path: string, flag: string): Promise<string> {
  return parseCaText(await readText(path, flag), path, flag).certPem;
}

/** Where `ca create` puts the key of `certPath`: `x.pem` → `x-key.pem`. */
export function keyPathFor(certPath: string): string {
  return certPath.endsWith(".pem") ? certPath.slice(0, -4) + "-key.pem" : certPath + "-key.pem";
}

/**
 * A CA that can sign: the certificate from `certPath`, the key from the same file (JSON or a
 * second PEM block), from `keyPath`, or from the `-key.pem` file next to it.
 */
export async function readSigningCa(
  certPath: string,
  keyPath: string | undefined,
  flag: string,
  keyFlag: string,
): Promise<DevCa> {
  const ca = parseCaText(await readText(certPath, flag), certPath, flag);
  let keyPem = ca.keyPem;
  if (keyPath !== undefined) {
    keyPem = pemBlocks(await readText(keyPath, keyFlag)).find((b) => b.label === "PRIVATE KEY")
      ?.pem;
    if (!keyPem) throw new UsageError(`${keyFlag}: '${keyPath}' holds no PEM PRIVATE KEY`);
  } else if (keyPem === undefined) {
    const sibling = keyPathFor(certPath);
    let text: string | undefined;
    try {
      text = await Deno.readTextFile(sibling);
    } catch { /* not there */ }
    keyPem = text === undefined
      ? undefined
      : pemBlocks(text).find((b) => b.label === "PRIVATE KEY")?.pem;
    if (!keyPem) {
      throw new UsageError(
        `${keyFlag} is needed: '${certPath}' holds no private key and '${sibling}' does not exist`,
      );
    }
  }
  return { certPem: ca.certPem, keyPem };
}

/** A certificate chain and key given as `--cert`/`--key` files. */
export async function readCertAndKey(
  certPath: string,
  keyPath: string,
): Promise<{ certPem: string; keyPem: string }> {
  const certs = pemBlocks(await readText(certPath, "--cert")).filter((b) =>
    b.label === "CERTIFICATE"
  );
  if (certs.length === 0) throw new UsageError(`--cert: '${certPath}' holds no PEM CERTIFICATE`);
  const key = pemBlocks(await readText(keyPath, "--key")).find((b) => b.label === "PRIVATE KEY");
  if (!key) throw new UsageError(`--key: '${keyPath}' holds no PEM PRIVATE KEY`);
  return { certPem: certs.map((b) => b.pem).join(""), keyPem: key.pem };
}

/**
 * Writes `text` to `path` with `mode`, refusing to replace an existing file unless `force`.
 * The mode is applied on creation and again after writing (umask-proof).
 */
export async function writeNew(
  path: string,
  text: string,
  mode: number,
  force: boolean,
): Promise<void> {
  try {
    await Deno.writeTextFile(path, text, { mode, createNew: !force });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new UsageError(`'${path}' already exists (pass --force to replace it)`);
    }
    throw e;
  }
  if (Deno.build.os !== "windows") await Deno.chmod(path, mode);
}

function decodeBase64(text: string): Uint8Array | undefined {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * Reads a keyring file: one base64 key (16 or 32 bytes) per line, the first one primary;
 * blank lines and `#` comments are skipped.
 */
export async function readKeyringFile(path: string, flag: string): Promise<Keyring> {
  const text = await readText(path, flag);
  const keys: Uint8Array[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const key = decodeBase64(line);
    if (!key || (key.length !== 16 && key.length !== 32)) {
      throw new UsageError(
        `${flag}: line ${i + 1} of '${path}' is not a base64 key of 16 or 32 bytes ` +
          `(make one with 'rpcnet keygen')`,
      );
    }
    keys.push(key);
  }
  if (keys.length === 0) throw new UsageError(`${flag}: '${path}' holds no key`);
  return new Keyring(keys);
}
