/**
 * The address a node advertises when it binds a wildcard: `0.0.0.0` and `::` accept traffic on
 * every interface but cannot be called, so another node needs one of this host's real addresses.
 * As memberlist does, the first private address of the host's interfaces is picked (falling back to
 * a global one); with none, or when the choice would be a guess the user must make, the node
 * refuses to start and says to set the advertise address.
 *
 * @module
 */

import { RpcError } from "./errors.ts";
import { isWildcard } from "./addr.ts";

/** One interface address, as `Deno.networkInterfaces()` lists them. */
export interface InterfaceAddress {
  /** `"IPv4"` or `"IPv6"`. */
  family: "IPv4" | "IPv6";
  /** The address, IPv6 without brackets or zone. */
  address: string;
  /** The interface name (`eth0`). */
  name: string;
}

function v4Octets(a: string): number[] {
  return a.split(".").map(Number);
}

/** Whether an IPv4 address is private (RFC 1918) or carrier-grade NAT (RFC 6598, 100.64/10). */
function isPrivateV4(a: string): boolean {
  const [x, y] = v4Octets(a);
  return x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) ||
    (x === 100 && y >= 64 && y <= 127);
}

function isUsableV4(a: string): boolean {
  const [x, y] = v4Octets(a);
  return x !== 127 && x !== 0 && !(x === 169 && y === 254) && x < 224;
}

function isUsableV6(a: string): boolean {
  const l = a.toLowerCase();
  return l !== "::1" && l !== "::" && !/^fe[89ab]/.test(l) && !l.startsWith("ff");
}

/** Unique local IPv6 (fc00::/7): the IPv6 counterpart of a private IPv4 address. */
function isUlaV6(a: string): boolean {
  return /^f[cd]/i.test(a);
}

/**
 * The address to advertise for a node bound to `bindHost` on a host with `interfaces`: `bindHost`
 * itself when it is not a wildcard; for `0.0.0.0` the first private IPv4 address (else the first
 * global one); for `::` the first unique-local IPv6 address (else the first global one). Loopback
 * and link-local addresses are never picked.
 *
 * @param bindHost the bound host
 * @param option the option the user sets to choose explicitly, named in the error
 * @param interfaces this host's addresses (default `Deno.networkInterfaces()`)
 * @throws {RpcError} `invalid_argument` when no routable address exists, naming `option`
 */
export function advertiseHostFor(
  bindHost: string,
  option: string,
  interfaces?: readonly InterfaceAddress[],
): string {
  if (!isWildcard(bindHost)) return bindHost;
  const v6 = bindHost.includes(":");
  let list: readonly InterfaceAddress[];
  try {
    list = interfaces ?? Deno.networkInterfaces() as InterfaceAddress[];
  } catch (e) {
    throw new RpcError(
      "invalid_argument",
      `${option} is required when binding ${bindHost}: cannot list this host's interfaces ` +
        `(${(e as Error).message}; grant --allow-sys=networkInterfaces or set ${option})`,
      { cause: e },
    );
  }
  const candidates = list.filter((i) =>
    v6 ? i.family === "IPv6" && isUsableV6(i.address) : i.family === "IPv4" &&
      isUsableV4(i.address)
  );
  const preferred = candidates.find((i) => v6 ? isUlaV6(i.address) : isPrivateV4(i.address)) ??
    candidates[0];
  if (preferred === undefined) {
    throw new RpcError(
      "invalid_argument",
      `${option} is required when binding ${bindHost}: this host has no routable ${
        v6 ? "IPv6" : "IPv4"
      } address to advertise; set ${option} to the address other nodes reach this one at`,
    );
  }
  // A zone suffix (fe80::1%eth0) never appears here: link-local addresses are filtered out.
  return preferred.address;
}

/**
 * Checks an advertised host: not empty, not a wildcard (nobody can call `0.0.0.0`).
 *
 * @throws {RpcError} `invalid_argument` naming `option` and the fix
 */
export function checkAdvertiseHost(option: string, host: string): void {
  if (isWildcard(host)) {
    throw new RpcError(
      "invalid_argument",
      `${option}: ${host} cannot be advertised (other nodes cannot call a wildcard address); ` +
        `set ${option} to an address of this host other nodes can reach (e.g. 10.0.0.5), or ` +
        `leave it out to use the first private address of this host's interfaces`,
    );
  }
}
