/**
 * Symmetric keys that seal gossip datagrams with AES-GCM, rotatable while the cluster runs.
 *
 * Wire format of a sealed packet (memberlist's "try every key" scheme, no key id on the wire so
 * nothing tells an observer which key is in use):
 *
 * ```text
 * [1 byte version = 1][12-byte random nonce][ciphertext + 16-byte GCM tag]
 * ```
 *
 * The cluster label is the GCM additional data, so a packet sealed for one cluster does not
 * authenticate in another even when both share a key.
 *
 * @module
 */
import { RpcError } from "../errors.ts";

/** Version byte at the front of every sealed packet. */
const SEAL_VERSION = 1;
/** AES-GCM nonce length (the 96 bits GCM is designed for). */
const NONCE_BYTES = 12;
/** AES-GCM authentication tag length. */
const TAG_BYTES = 16;

/** Bytes {@linkcode Keyring.seal} adds to a plaintext: version + nonce + tag. */
export const KEYRING_OVERHEAD: number = 1 + NONCE_BYTES + TAG_BYTES;

interface KeyEntry {
  /** A private copy of the raw key bytes (callers may reuse their buffer). */
  readonly raw: Uint8Array;
  /** Imported once when the key is installed, reused for every packet. */
  readonly key: Promise<CryptoKey>;
}

const textEncoder = new TextEncoder();

function toBytes(aad: Uint8Array | string): Uint8Array<ArrayBuffer> {
  return typeof aad === "string"
    ? textEncoder.encode(aad)
    : new Uint8Array(aad) as Uint8Array<ArrayBuffer>;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function validateKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || (key.length !== 16 && key.length !== 32)) {
    const len = key instanceof Uint8Array ? `${key.length} bytes` : typeof key;
    throw new RpcError(
      "invalid_argument",
      `keyring key must be 16 bytes (AES-128) or 32 bytes (AES-256), got ${len}`,
    );
  }
}

/**
 * An ordered set of AES-GCM keys. The first (primary) key seals outgoing packets; every installed
 * key is tried when opening, so keys can rotate without downtime:
 * `install(new)` on every node → `use(new)` on every node → `remove(old)` on every node.
 *
 * @example
 * ```ts
 * import { Keyring } from "@rpcnet/cluster";
 *
 * const keyring = new Keyring([crypto.getRandomValues(new Uint8Array(32))]);
 * const label = new TextEncoder().encode("prod-cluster");
 * const sealed = await keyring.seal(new TextEncoder().encode("ping"), label);
 * const opened = await keyring.open(sealed, label); // Uint8Array("ping"), or undefined if forged
 * console.log(opened && new TextDecoder().decode(opened));
 * ```
 */
export class Keyring {
  #entries: KeyEntry[] = [];

  /** Bytes {@linkcode Keyring.seal} adds to a plaintext (version byte, nonce, GCM tag): 29. */
  static readonly overhead: number = KEYRING_OVERHEAD;

  /**
   * Creates a keyring and imports its keys (once; every packet reuses them).
   *
   * @param keys 16- or 32-byte keys; the first becomes the primary (sealing) key. At least one.
   * @throws {RpcError} `invalid_argument` for an empty list or a key of the wrong length.
   */
  constructor(keys: readonly Uint8Array[]) {
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new RpcError("invalid_argument", "keyring needs at least one key");
    }
    for (const k of keys) this.install(k);
  }

  /** Copies of the installed keys, primary first. */
  get keys(): Uint8Array[] {
    return this.#entries.map((e) => new Uint8Array(e.raw));
  }

  /** A copy of the primary key (the one that seals). */
  get primaryKey(): Uint8Array {
    return new Uint8Array(this.#entries[0].raw);
  }

  /**
   * Adds a key that {@linkcode Keyring.open} accepts; it does not seal until {@linkcode Keyring.use}.
   * Installing an already installed key is a no-op.
   *
   * @throws {RpcError} `invalid_argument` for a key that is not 16 or 32 bytes.
   */
  install(key: Uint8Array): void {
    validateKey(key);
    if (this.#find(key) >= 0) return;
    const raw = new Uint8Array(key);
    const imported = crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
    // Avoid an unhandled rejection if the key is removed before anyone awaits it.
    imported.catch(() => {});
    this.#entries.push({ raw, key: imported });
  }

  /**
   * Makes an installed key the primary (sealing) key. Peers should have installed it first.
   *
   * @throws {RpcError} `invalid_argument` when the key is not installed.
   */
  use(key: Uint8Array): void {
    validateKey(key);
    const i = this.#find(key);
    if (i < 0) {
      throw new RpcError("invalid_argument", "keyring.use: key is not installed; install it first");
    }
    const [entry] = this.#entries.splice(i, 1);
    this.#entries.unshift(entry);
  }

  /**
   * Removes a key. Removing a key that is not installed is a no-op.
   *
   * @throws {RpcError} `invalid_argument` when `key` is the primary key (switch with `use` first).
   */
  remove(key: Uint8Array): void {
    validateKey(key);
    const i = this.#find(key);
    if (i < 0) return;
    if (i === 0) {
      throw new RpcError(
        "invalid_argument",
        "keyring.remove: refusing to remove the primary key; use() another key first",
      );
    }
    this.#entries.splice(i, 1);
  }

  /**
   * Encrypts and authenticates `plain` with the primary key; `aad` (the cluster label) is
   * authenticated but not included in the output.
   */
  async seal(plain: Uint8Array, aad: Uint8Array | string): Promise<Uint8Array> {
    const key = await this.#entries[0].key;
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const ct = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: nonce, additionalData: toBytes(aad), tagLength: TAG_BYTES * 8 },
        key,
        plain as Uint8Array<ArrayBuffer>,
      ),
    );
    const out = new Uint8Array(1 + NONCE_BYTES + ct.length);
    out[0] = SEAL_VERSION;
    out.set(nonce, 1);
    out.set(ct, 1 + NONCE_BYTES);
    return out;
  }

  /**
   * Authenticates and decrypts a packet made by {@linkcode Keyring.seal}, trying every installed
   * key (primary first). Returns `undefined` — never throws — when no key authenticates it, the
   * label differs, a byte was changed, or the input is malformed.
   */
  async open(sealed: Uint8Array, aad: Uint8Array | string): Promise<Uint8Array | undefined> {
    try {
      if (!(sealed instanceof Uint8Array) || sealed.length < KEYRING_OVERHEAD) return undefined;
      if (sealed[0] !== SEAL_VERSION) return undefined;
      const nonce = sealed.slice(1, 1 + NONCE_BYTES);
      const ct = sealed.subarray(1 + NONCE_BYTES) as Uint8Array<ArrayBuffer>;
      const additionalData = toBytes(aad);
      for (const entry of [...this.#entries]) {
        try {
          const key = await entry.key;
          const plain = await crypto.subtle.decrypt(
            { name: "AES-GCM", iv: nonce, additionalData, tagLength: TAG_BYTES * 8 },
            key,
            ct,
          );
          return new Uint8Array(plain);
        } catch {
          // Not this key (or forged): try the next one.
        }
      }
      return undefined;
    } catch {
      return undefined;
    }
  }

  #find(key: Uint8Array): number {
    return this.#entries.findIndex((e) => sameBytes(e.raw, key));
  }
}
