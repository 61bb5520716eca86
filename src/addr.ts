/**
 * Network addresses: the one `host:port` parser and formatter of the package (IPv6 in brackets,
 * `[fd00::2]:7946`), shared by gossip, RPC, seeds and the command line.
 *
 * @module
 */

import { RpcError } from "./errors.ts";

/** A host (name, IPv4 or IPv6 without brackets) and a port. */
export interface HostPort {
  /** Host name or IP address; IPv6 without brackets. */
  hostname: string;
  /** Port, 1–65535. */
  port: number;
}

/**
 * Splits `host:port` (IPv6 as `[::1]:7946`); `undefined` when malformed (no port, a port out of
 * 1–65535, an unbracketed IPv6 address, an empty host).
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./addr.ts";
 *
 * console.log(parseHostPort("[fd00::2]:7946")); // { hostname: "fd00::2", port: 7946 }
 * console.log(parseHostPort("10.0.0.1")); // undefined: no port
 * ```
 */
export function parseHostPort(addr: string): HostPort | undefined {
  if (typeof addr !== "string") return undefined;
  let host: string;
  let portText: string;
  if (addr.startsWith("[")) {
    const end = addr.indexOf("]:");
    if (end < 0) return undefined;
    host = addr.slice(1, end);
    portText = addr.slice(end + 2);
  } else {
    const i = addr.lastIndexOf(":");
    if (i <= 0) return undefined;
    host = addr.slice(0, i);
    portText = addr.slice(i + 1);
    if (host.includes(":")) return undefined;
  }
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535 || host.length === 0) return undefined;
  return { hostname: host, port };
}

/**
 * Parses option `name`'s `host:port` value, or throws `invalid_argument` naming the option and the
 * expected form.
 *
 * @throws {RpcError} `invalid_argument` when `addr` is not `host:port`
 */
export function requireHostPort(name: string, addr: unknown): HostPort {
  const parsed = typeof addr === "string" ? parseHostPort(addr) : undefined;
  if (parsed === undefined) {
    throw new RpcError(
      "invalid_argument",
      `${name}: invalid address ${
        JSON.stringify(addr)
      }: want host:port (IPv6 in brackets, e.g. "[fd00::2]:7946")`,
    );
  }
  return parsed;
}

/** Formats a host and port as `host:port`, bracketing IPv6 addresses. */
export function formatHostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** Whether `hostname` is a wildcard address (`0.0.0.0`, `::`), which binds but cannot be reached. */
export function isWildcard(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::" || hostname === "[::]" ||
    hostname === "0:0:0:0:0:0:0:0";
}
