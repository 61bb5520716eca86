/**
 * What every `rpcnet` command shares: flag parsing with usage errors (exit 2), the connection
 * flags (`--addr`, `--secret`, `--ca`), colours (a terminal only, never with `NO_COLOR`) and
 * JSON output.
 *
 * Flags are parsed with `node:util` `parseArgs`: strict (an unknown flag is an error naming it),
 * string/boolean/repeatable options and positionals are all the commands need; subcommands are
 * the first positional.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { RpcError } from "../errors.ts";
import { parseHostPort } from "../addr.ts";
import { RpcClient } from "../rpc/client.ts";
import { parseFilter, type TagFilter } from "../registry/filter.ts";
import { readCaCert } from "./tls_files.ts";

/** Default RPC port of `rpcnet agent` and of `--addr`. */
export const DEFAULT_RPC_PORT = 7373;
/** Default gossip port of `rpcnet agent`. */
export const DEFAULT_GOSSIP_PORT = 7946;

/** A usage error: the command prints it with a hint to `--help` and exits with status 2. */
export class UsageError extends Error {
  /** @param message what is wrong, naming the flag */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Where a command writes; tests and `main` pass the process's streams. */
export interface Io {
  /** Standard output, one string per write. */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
  /** Whether standard output is a terminal. */
  isTerminal: boolean;
  /** Environment variable lookup. */
  env(name: string): string | undefined;
}

const encoder = new TextEncoder();

/** The process's standard streams and environment. */
export function processIo(): Io {
  return {
    out: (text) => writeAll(Deno.stdout, text),
    err: (text) => writeAll(Deno.stderr, text),
    isTerminal: Deno.stdout.isTerminal(),
    env: (name) => Deno.env.get(name),
  };
}

function writeAll(w: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(w.writeSync(bytes));
}

/** Colours for terminal output; every function is the identity when colours are off. */
export interface Colours {
  /** Green. */
  green(s: string): string;
  /** Yellow. */
  yellow(s: string): string;
  /** Red. */
  red(s: string): string;
  /** Dim grey. */
  dim(s: string): string;
  /** Bold. */
  bold(s: string): string;
}

/** Colours on a terminal unless `NO_COLOR` is set (to anything non-empty). */
export function colours(io: Io): Colours {
  const noColor = io.env("NO_COLOR");
  const on = io.isTerminal && (noColor === undefined || noColor === "");
  const wrap = (code: string) => (s: string) => on ? `\x1b[${code}m${s}\x1b[0m` : s;
  return {
    green: wrap("32"),
    yellow: wrap("33"),
    red: wrap("31"),
    dim: wrap("2"),
    bold: wrap("1"),
  };
}

/** Colours a member state: alive green, suspect yellow, dead/failed red, left dim. */
export function colourState(c: Colours, state: string): string {
  if (state === "alive") return c.green(state);
  if (state === "suspect") return c.yellow(state);
  if (state === "dead" || state === "failed") return c.red(state);
  return c.dim(state);
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parsed flags and positionals of one command. */
export interface Parsed {
  /** Flag values by long name. */
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  /** Positional arguments. */
  positionals: string[];
}

/**
 * Parses `args` strictly against `options` (plus `--help`/`-h`); unknown flags, missing values
 * and unexpected positionals become a {@linkcode UsageError} naming the flag.
 */
export function parseFlags(args: string[], options: Options, maxPositionals: number): Parsed {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { help: { type: "boolean", short: "h" }, ...options },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    // parseArgs' messages name the flag; keep the first sentence.
    const msg = String((e as Error).message).split(". ")[0].replace(/\.$/, "");
    throw new UsageError(msg);
  }
  if (!parsed.values.help && parsed.positionals.length > maxPositionals) {
    throw new UsageError(
      `unexpected argument '${parsed.positionals[maxPositionals]}'` +
        (parsed.positionals[maxPositionals].startsWith("-") ? "" : ""),
    );
  }
  return parsed as Parsed;
}

/** A string flag's value, or undefined. */
export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === "string" ? v : undefined;
}

/** A repeatable string flag's values. */
export function strs(p: Parsed, name: string): string[] {
  const v = p.values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** A boolean flag. */
export function bool(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration: `250ms`, `5s`, `1.5m`, `2h`, or a bare number of milliseconds.
 *
 * @throws {UsageError} naming `flag` for anything else or more than 2^31-1 ms
 */
export function parseDuration(flag: string, text: string): number {
  const m = DURATION.exec(text.trim());
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] ?? "ms"] : NaN;
  if (!Number.isFinite(ms) || ms > 2 ** 31 - 1) {
    throw new UsageError(`${flag} must be a duration like 500ms, 5s or 1m, got '${text}'`);
  }
  return ms;
}

/** Parses `k=v` pairs (repeatable `--meta`, `--tag`); a key is required. */
export function parsePairs(flag: string, items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} expects KEY=VALUE, got '${item}'`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}

/** Parses a tag filter flag (`role=worker,zone in (a,b)`). */
export function parseFilterFlag(flag: string, text: string): TagFilter {
  try {
    return parseFilter(text);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}

/** The flags of every command that connects to a cluster. */
export const CONNECT_FLAGS: Options = {
  addr: { type: "string" },
  secret: { type: "string" },
  ca: { type: "string" },
};

/** Help text of {@linkcode CONNECT_FLAGS}. */
export const CONNECT_HELP = `Connection (every command that looks at a cluster):
  --addr HOST:PORT   RPC address of any node (env RPCNET_ADDR, default 127.0.0.1:${DEFAULT_RPC_PORT})
  --secret S         cluster secret, when the nodes require one (env RPCNET_SECRET)
  --ca FILE          CA certificate the nodes' certificates come from, PEM or JSON, as written
                     by 'rpcnet ca create' (env RPCNET_CA)`;

/** Resolved connection settings. */
export interface ConnectSettings {
  /** The node's RPC address as given. */
  addr: string;
  /** Host part. */
  hostname: string;
  /** Port part. */
  port: number;
  /** Cluster secret. */
  secret?: string;
  /** PEM CA certificate to trust. */
  caCerts?: string[];
}

/** Reads the connection flags with their environment fallbacks. */
export async function connectSettings(p: Parsed, io: Io): Promise<ConnectSettings> {
  const addr = str(p, "addr") ?? io.env("RPCNET_ADDR") ?? `127.0.0.1:${DEFAULT_RPC_PORT}`;
  const hp = parseHostPort(addr);
  if (!hp) {
    const from = str(p, "addr") !== undefined ? "--addr" : "RPCNET_ADDR";
    throw new UsageError(`${from} must be HOST:PORT (IPv6 in brackets), got '${addr}'`);
  }
  const secret = str(p, "secret") ?? io.env("RPCNET_SECRET");
  if (secret === "") throw new UsageError("--secret must not be empty");
  const caPath = str(p, "ca") ?? io.env("RPCNET_CA");
  const caCerts = caPath === undefined ? undefined : [await readCaCert(caPath, "--ca")];
  return { addr, hostname: hp.hostname, port: hp.port, secret, caCerts };
}

/** Connects a plain RpcClient to `addr` (another node than the one in `s` when given). */
export async function connect(s: ConnectSettings, addr?: string): Promise<RpcClient> {
  let hostname = s.hostname, port = s.port;
  if (addr !== undefined) {
    const hp = parseHostPort(addr);
    if (!hp) throw new RpcError("invalid_argument", `bad node address '${addr}'`);
    ({ hostname, port } = hp);
  }
  try {
    return await RpcClient.connect({
      hostname,
      port,
      secret: s.secret,
      caCerts: s.caCerts,
      connectTimeoutMs: 3000,
    });
  } catch (e) {
    if (RpcError.is(e, "unavailable") && s.caCerts === undefined) {
      throw new RpcError(
        "unavailable",
        `${(e as Error).message} (is a node listening on ${hostname}:${port}? ` +
          `Its certificate must come from the CA given with --ca)`,
        { cause: e },
      );
    }
    throw e;
  }
}

/** `JSON.stringify` that keeps what msgpack may decode: bytes as base64, bigints as strings. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v) => {
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) return { $base64: btoa(String.fromCharCode(...v)) };
    if (v instanceof Map) return Object.fromEntries(v);
    if (v instanceof Set) return [...v];
    if (typeof v === "number" && !Number.isFinite(v)) return String(v);
    return v;
  }, indent);
}

/** Left-aligned text table with a header row; `width` is the visible width of a cell. */
export function table(rows: string[][], width: (s: string) => number = visibleWidth): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => widths[i] = Math.max(widths[i] ?? 0, width(c)));
  return rows.map((r) =>
    r.map((c, i) => i === r.length - 1 ? c : c + " ".repeat(widths[i] - width(c))).join("  ")
      .trimEnd()
  ).join("\n") + "\n";
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** Width of `s` without ANSI colour codes. */
export function visibleWidth(s: string): number {
  return s.replace(ANSI, "").length;
}

/** `k=v,k=v` of a tag map, sorted by key. */
export function formatTags(tags: Readonly<Record<string, string>>): string {
  return Object.keys(tags).sort().map((k) => `${k}=${tags[k]}`).join(",");
}

/** A short human duration: 850ms, 12s, 3m4s, 2h5m. */
export function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
