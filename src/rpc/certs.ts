/**
 * Development certificates minted in-process (no openssl): an ECDSA P-256 certificate authority
 * and leaf certificates it signs, with WebCrypto and `@peculiar/x509`. QUIC always runs TLS, so
 * tests, demos and local clusters use these; production passes its own PEMs.
 *
 * @module
 */

import { RpcError } from "../errors.ts";

/** A certificate authority as PEM text; share it across processes so they trust each other. */
export interface DevCa {
  /** The CA certificate (PEM); clients trust it. */
  certPem: string;
  /** The CA's PKCS#8 private key (PEM); used to sign leaf certificates. */
  keyPem: string;
}

/** A server's TLS identity: certificate chain and private key as PEM text. */
export interface TlsConfig {
  /** The certificate chain (leaf first) in PEM format. */
  certPem: string;
  /** The PKCS#8 private key in PEM format. */
  keyPem: string;
  /** The CA certificate that signed the chain, when known (clients may trust it). */
  caPem?: string;
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;

type X509 = typeof import("@peculiar/x509");
let x509Module: Promise<X509> | undefined;

// Loaded lazily: users who bring their own PEMs never pay for it. tsyringe (a dependency of
// @peculiar/x509) needs the Reflect metadata polyfill installed before it loads.
function loadX509(): Promise<X509> {
  x509Module ??= (async () => {
    await import("reflect-metadata");
    const x509 = await import("@peculiar/x509");
    x509.cryptoProvider.set(crypto);
    return x509;
  })();
  return x509Module;
}

function randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f; // positive INTEGER
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Creates a fresh development certificate authority (ECDSA P-256, valid 10 years).
 *
 * @example
 * ```ts
 * import { createDevCa, issueDevCertificate } from "@rpcnet/cluster";
 * const ca = await createDevCa();
 * const tls = await issueDevCertificate(ca, ["localhost", "127.0.0.1"]);
 * console.log(tls.certPem.startsWith("-----BEGIN CERTIFICATE-----"));
 * ```
 */
export async function createDevCa(): Promise<DevCa> {
  const x509 = await loadX509();
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: "CN=rpcnet development CA",
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 3650 * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { certPem: cert.toString("pem"), keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
}

let processCa: Promise<DevCa> | undefined;

/**
 * The development CA of this process: created on first use, then cached. An `RpcServer` without
 * `tls`/`devCa` serves a certificate signed by it, and an `RpcClient` without `caCerts`/`devCa`
 * trusts it, so same-process code needs no setup.
 */
export function defaultDevCa(): Promise<DevCa> {
  processCa ??= createDevCa();
  return processCa;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function isIpLiteral(name: string): boolean {
  return IPV4.test(name) || name.includes(":");
}

/**
 * The names a node's development certificate should cover: the given hosts (advertised and bound
 * addresses, DNS names, a cluster-wide server name; wildcards and duplicates left out, IPv6
 * brackets stripped), then `localhost`, `127.0.0.1` and `::1` so same-host callers verify too.
 *
 * @example
 * ```ts
 * import { devCertificateNames } from "@rpcnet/cluster";
 * console.log(devCertificateNames(["10.0.0.5", "[fd00::5]", "0.0.0.0", "rpcnet.cluster"]));
 * // ["10.0.0.5", "fd00::5", "rpcnet.cluster", "localhost", "127.0.0.1", "::1"]
 * ```
 */
export function devCertificateNames(hosts: readonly (string | undefined)[]): string[] {
  const out: string[] = [];
  for (const raw of [...hosts, "localhost", "127.0.0.1", "::1"]) {
    if (typeof raw !== "string" || raw === "") continue;
    const h = raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw;
    if (h === "0.0.0.0" || h === "::" || h === "0:0:0:0:0:0:0:0") continue;
    if (!out.includes(h)) out.push(h);
  }
  return out;
}

/**
 * Issues a leaf certificate for `names` (DNS names and IP literals), signed by `ca`, valid
 * 825 days.
 *
 * @param ca the authority that signs the certificate
 * @param names subject alternative names (default `["localhost", "127.0.0.1"]`)
 * @throws {RpcError} `invalid_argument` when `names` is empty or the CA key cannot be read
 */
export async function issueDevCertificate(
  ca: DevCa,
  names: string[] = ["localhost", "127.0.0.1"],
): Promise<TlsConfig> {
  if (names.length === 0) {
    throw new RpcError("invalid_argument", "issueDevCertificate: names must not be empty");
  }
  const x509 = await loadX509();
  let caCert, caKey;
  try {
    caCert = new x509.X509Certificate(ca.certPem);
    const der = x509.PemConverter.decodeFirst(ca.keyPem);
    caKey = await crypto.subtle.importKey("pkcs8", der, ALG, false, ["sign"]);
  } catch (e) {
    throw new RpcError("invalid_argument", `issueDevCertificate: unreadable CA PEM: ${e}`, {
      cause: e,
    });
  }
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const now = Date.now();
  const sans = names.map((n) =>
    isIpLiteral(n) ? { type: "ip" as const, value: n } : { type: "dns" as const, value: n }
  );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${names[0]}`,
    issuer: caCert.subject,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 825 * DAY_MS),
    signingKey: caKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(sans),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    certPem: cert.toString("pem"),
    keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
    caPem: ca.certPem,
  };
}

/**
 * Writes a development CA to `path` as PEM (certificate, then private key) with file mode 0600,
 * so every node of a cluster can load the same CA (`loadDevCa`). The key signs certificates every
 * node trusts: keep the file private.
 *
 * @example
 * ```ts
 * import { createDevCa, loadDevCa, saveDevCa } from "@rpcnet/cluster";
 * const path = await Deno.makeTempFile();
 * await saveDevCa(path, await createDevCa());
 * const ca = await loadDevCa(path);
 * console.log(ca.certPem.startsWith("-----BEGIN CERTIFICATE-----"));
 * await Deno.remove(path);
 * ```
 *
 * @throws {RpcError} `invalid_argument` when `ca` is not a CA; `unavailable` when the file cannot
 *   be written
 */
export async function saveDevCa(path: string | URL, ca: DevCa): Promise<void> {
  checkDevCa("saveDevCa: ca", ca);
  const text = `${ca.certPem.trim()}\n${ca.keyPem.trim()}\n`;
  try {
    await Deno.writeTextFile(path, text, { mode: 0o600 });
    // `mode` applies only when the file is created: tighten an existing file too.
    if (Deno.build.os !== "windows") await Deno.chmod(path, 0o600);
  } catch (e) {
    throw new RpcError("unavailable", `saveDevCa: cannot write ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/**
 * Reads a CA written by {@linkcode saveDevCa} (PEM certificate and PKCS#8 key in one file; the
 * JSON `{certPem, keyPem}` form of older examples is accepted too).
 *
 * @throws {RpcError} `invalid_argument` when the file holds no CA certificate and key;
 *   `unavailable` when it cannot be read
 */
export async function loadDevCa(path: string | URL): Promise<DevCa> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new RpcError("unavailable", `loadDevCa: cannot read ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (text.trimStart().startsWith("{")) {
    try {
      const j = JSON.parse(text);
      return checkDevCa(`loadDevCa: ${path}`, { certPem: j?.certPem, keyPem: j?.keyPem });
    } catch (e) {
      if (e instanceof RpcError) throw e;
      throw new RpcError("invalid_argument", `loadDevCa: ${path} is not a CA file: ${e}`);
    }
  }
  const block = (label: string) =>
    text.match(new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`))?.[0];
  return checkDevCa(`loadDevCa: ${path}`, {
    certPem: block("CERTIFICATE") ?? "",
    keyPem: block("PRIVATE KEY") ?? "",
  });
}

function checkDevCa(what: string, ca: unknown): DevCa {
  const c = ca as Partial<DevCa> | null;
  if (
    typeof c !== "object" || c === null || typeof c.certPem !== "string" ||
    typeof c.keyPem !== "string" || !c.certPem.includes("-----BEGIN CERTIFICATE-----") ||
    !c.keyPem.includes("-----BEGIN PRIVATE KEY-----")
  ) {
    throw new RpcError(
      "invalid_argument",
      `${what} must be a CA: a PEM certificate and a PEM PKCS#8 private key ("createDevCa()")`,
    );
  }
  return { certPem: c.certPem, keyPem: c.keyPem };
}

/**
 * What a TLS handshake failure between nodes means and what to do about it, or `undefined` when
 * `message` is not a certificate error Deno (rustls) reports.
 *
 * @param message the handshake error's message
 */
export function explainTlsFailure(message: string): string | undefined {
  if (/BadSignature|UnknownIssuer/.test(message)) {
    return "this node's CA did not issue the peer's certificate: give every node the same CA " +
      "(saveDevCa/loadDevCa, or the same caCerts)";
  }
  if (/not valid for name/.test(message)) {
    return "the peer's certificate does not name the address it was called at: issue node " +
      "certificates for their advertised addresses (Node does it with devCa), or give every " +
      "node one cluster-wide serverName and certificates for that name";
  }
  if (/Expired|NotValidYet/.test(message)) {
    return "the peer's certificate is outside its validity period: renew it, and check the " +
      "clocks of both hosts";
  }
  if (/NoCertificatesPresented|UnsupportedCertVersion|BadEncoding|InvalidPurpose/.test(message)) {
    return "the peer presented an unusable certificate: give it a server certificate (PEM, " +
      "X.509 v3, serverAuth) signed by the cluster's CA";
  }
  return undefined;
}
