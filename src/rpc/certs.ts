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
    IPV4.test(n) || n.includes(":") ? { type: "ip" as const, value: n } : {
      type: "dns" as const,
      value: n,
    }
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
