/**
 * `rpcnet agent` settings from three sources, by precedence: flags, then environment
 * (`RPCNET_*`), then a JSON config file (`--config` / `RPCNET_CONFIG`), then defaults. A setting
 * given by a stronger source replaces the weaker one entirely (seeds and tags are not merged).
 *
 * | flag              | environment           | config key    | default          |
 * |-------------------|-----------------------|---------------|------------------|
 * | `--id`            | `RPCNET_ID`           | `id`          | a random UUID    |
 * | `--bind`          | `RPCNET_BIND`         | `bind`        | `127.0.0.1:7946` |
 * | `--advertise`     | `RPCNET_ADVERTISE`    | `advertise`   | the bind address |
 * | `--rpc-port`      | `RPCNET_RPC_PORT`     | `rpcPort`     | 7373             |
 * | `--seed` (repeat) | `RPCNET_SEEDS` (a,b)  | `seeds` [ ]   | none (new cluster)|
 * | `--tag k=v` (rep.)| `RPCNET_TAGS` (k=v,…) | `tags` { }    | none             |
 * | `--profile`       | `RPCNET_PROFILE`      | `profile`     | `LAN`            |
 * | `--label`         | `RPCNET_LABEL`        | `label`       | none             |
 * | `--secret`        | `RPCNET_SECRET`       | `secret`      | none             |
 * | `--keyring-file`  | `RPCNET_KEYRING_FILE` | `keyringFile` | none (plaintext) |
 * | `--ca`            | `RPCNET_CA`           | `ca`          | a throwaway CA   |
 * | `--ca-key`        | `RPCNET_CA_KEY`       | `caKey`       | `<ca>-key.pem`   |
 * | `--cert`, `--key` | `RPCNET_CERT`, `_KEY` | `cert`, `key` | issued from --ca |
 * | `--handlers`      | `RPCNET_HANDLERS`     | `handlers`    | none             |
 * | `--http`          | `RPCNET_HTTP`         | `http`        | none (no HTTP)   |
 *
 * @module
 */

import { formatHostPort, isWildcard, parseHostPort } from "../addr.ts";
import type { Profile } from "../membership/config.ts";
import {
  DEFAULT_GOSSIP_PORT,
  DEFAULT_RPC_PORT,
  type Io,
  type Parsed,
  str,
  strs,
} from "./common.ts";
import { UsageError } from "./common.ts";

/** Every agent setting, after precedence. */
export interface AgentConfig {
  /** Node id. */
  id?: string;
  /** `HOST` or `HOST:GOSSIP_PORT` the sockets bind to. */
  bind?: string;
  /** `HOST` or `HOST:GOSSIP_PORT` other nodes reach this one at. */
  advertise?: string;
  /** RPC port. */
  rpcPort?: number;
  /** Gossip addresses to join. */
  seeds: string[];
  /** Node tags. */
  tags: Record<string, string>;
  /** Membership timing profile. */
  profile?: Profile;
  /** Cluster label. */
  label?: string;
  /** Cluster secret for RPC. */
  secret?: string;
  /** Keyring file (gossip encryption). */
  keyringFile?: string;
  /** CA certificate file. */
  ca?: string;
  /** CA key file. */
  caKey?: string;
  /** Certificate chain file. */
  cert?: string;
  /** Certificate key file. */
  key?: string;
  /** Handlers module. */
  handlers?: string;
  /** `[HOST:]PORT` of the HTTP server (`/metrics`, `/healthz`, `/readyz`, status page). */
  http?: string;
}

/** The agent's flags (for `parseFlags`). */
export const AGENT_FLAGS = {
  config: { type: "string" },
  id: { type: "string" },
  bind: { type: "string" },
  advertise: { type: "string" },
  "rpc-port": { type: "string" },
  seed: { type: "string", multiple: true },
  tag: { type: "string", multiple: true },
  profile: { type: "string" },
  label: { type: "string" },
  secret: { type: "string" },
  "keyring-file": { type: "string" },
  ca: { type: "string" },
  "ca-key": { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  handlers: { type: "string" },
  http: { type: "string" },
} as const;

type Key = Exclude<keyof AgentConfig, "seeds" | "tags"> | "seeds" | "tags";

// flag name, env name, config key
const SETTINGS: [string, string, Key][] = [
  ["--id", "RPCNET_ID", "id"],
  ["--bind", "RPCNET_BIND", "bind"],
  ["--advertise", "RPCNET_ADVERTISE", "advertise"],
  ["--rpc-port", "RPCNET_RPC_PORT", "rpcPort"],
  ["--seed", "RPCNET_SEEDS", "seeds"],
  ["--tag", "RPCNET_TAGS", "tags"],
  ["--profile", "RPCNET_PROFILE", "profile"],
  ["--label", "RPCNET_LABEL", "label"],
  ["--secret", "RPCNET_SECRET", "secret"],
  ["--keyring-file", "RPCNET_KEYRING_FILE", "keyringFile"],
  ["--ca", "RPCNET_CA", "ca"],
  ["--ca-key", "RPCNET_CA_KEY", "caKey"],
  ["--cert", "RPCNET_CERT", "cert"],
  ["--key", "RPCNET_KEY", "key"],
  ["--handlers", "RPCNET_HANDLERS", "handlers"],
  ["--http", "RPCNET_HTTP", "http"],
];

const PROFILES: readonly string[] = ["LAN", "WAN", "LOCAL"];

function splitList(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

function tagsFrom(source: string, items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${source} expects KEY=VALUE tags, got '${item}'`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}

function port(source: string, v: unknown): number {
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new UsageError(`${source} must be a port in [0, 65535] (0 picks one), got '${v}'`);
  }
  return n;
}

/** Reads and checks a JSON config file: an object whose keys are {@linkcode AgentConfig}'s. */
async function readConfigFile(path: string, flag: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`${flag}: cannot read '${path}': ${(e as Error).message}`);
  }
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${flag}: '${path}' is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) {
    throw new UsageError(`${flag}: '${path}' must hold a JSON object`);
  }
  const known = new Set(SETTINGS.map((s) => s[2] as string));
  for (const k of Object.keys(j)) {
    if (!known.has(k)) {
      throw new UsageError(
        `config key '${k}' in '${path}' is unknown (known: ${[...known].join(", ")})`,
      );
    }
  }
  return j as Record<string, unknown>;
}

/** Resolves the agent's settings: flags > environment > config file > defaults. */
export async function resolveAgentConfig(p: Parsed, io: Io): Promise<AgentConfig> {
  const configPath = str(p, "config") ?? io.env("RPCNET_CONFIG");
  const file = configPath === undefined
    ? {}
    : await readConfigFile(configPath, str(p, "config") ? "--config" : "RPCNET_CONFIG");
  const cfg: AgentConfig = { seeds: [], tags: {} };
  const out = cfg as unknown as Record<string, unknown>;
  for (const [flag, env, key] of SETTINGS) {
    const flagName = flag.slice(2);
    if (key === "seeds" || key === "tags") {
      const fromFlag = strs(p, flagName);
      const fromEnv = io.env(env);
      if (fromFlag.length > 0) {
        out[key] = key === "seeds"
          ? fromFlag.flatMap(splitList)
          : tagsFrom(flag, fromFlag.flatMap(splitList));
      } else if (fromEnv !== undefined) {
        out[key] = key === "seeds" ? splitList(fromEnv) : tagsFrom(env, splitList(fromEnv));
      } else if (file[key] !== undefined) {
        const v = file[key];
        if (key === "seeds") {
          if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
            throw new UsageError(`config key 'seeds' must be an array of "host:port" strings`);
          }
          out[key] = v;
        } else {
          if (
            typeof v !== "object" || v === null || Array.isArray(v) ||
            Object.values(v).some((s) => typeof s !== "string")
          ) {
            throw new UsageError(`config key 'tags' must be an object of string values`);
          }
          out[key] = { ...v };
        }
      }
      continue;
    }
    const fromFlag = str(p, flagName);
    const fromEnv = io.env(env);
    const [source, value] = fromFlag !== undefined
      ? [flag, fromFlag]
      : fromEnv !== undefined
      ? [env, fromEnv]
      : [`config key '${key}'`, file[key]];
    if (value === undefined) continue;
    if (key === "rpcPort") {
      out[key] = port(source, value);
    } else if (typeof value !== "string" || value === "") {
      throw new UsageError(`${source} must be a non-empty string, got ${JSON.stringify(value)}`);
    } else if (key === "profile" && !PROFILES.includes(value)) {
      throw new UsageError(`${source} must be one of ${PROFILES.join(", ")}, got '${value}'`);
    } else {
      out[key] = value;
    }
  }
  for (const s of cfg.seeds) {
    if (!parseHostPort(s)) throw new UsageError(`seed '${s}' must be HOST:PORT`);
  }
  if ((cfg.cert === undefined) !== (cfg.key === undefined)) {
    throw new UsageError(`${cfg.cert === undefined ? "--cert" : "--key"} is needed too`);
  }
  if (cfg.cert !== undefined && cfg.ca === undefined) {
    throw new UsageError("--ca is needed with --cert: the CA that signed the other nodes");
  }
  return cfg;
}

/** Host and gossip port of a `--bind`/`--advertise` value (`HOST` or `HOST:PORT`). */
function hostAndPort(flag: string, text: string): { host: string; port?: number } {
  const bad = () => new UsageError(`${flag} must be HOST or HOST:PORT, got '${text}'`);
  let host = text, portText: string | undefined;
  if (text.startsWith("[")) {
    // [v6] or [v6]:port
    const end = text.indexOf("]");
    if (end < 0) throw bad();
    host = text.slice(1, end);
    const rest = text.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) throw bad();
      portText = rest.slice(1);
    }
  } else if (text.split(":").length === 2) {
    [host, portText] = text.split(":");
  } // else a name, an IPv4 address or a bare IPv6 address
  if (host === "" || /[\s\[\]]/.test(host)) throw bad();
  return portText === undefined ? { host } : { host, port: port(flag, portText) };
}

/** What `Node.start` gets for addresses. */
export interface NodeAddresses {
  /** `NodeOptions.bind`: the host both sockets bind (a wildcard binds every interface). */
  bind: string;
  /** `NodeOptions.advertise`: the host others call; undefined lets `Node` pick one. */
  advertise?: string;
  /** `NodeOptions.gossipAdvertise`, when the advertised gossip port differs from the bound one. */
  gossipAdvertise?: string;
  /** `NodeOptions.rpcPort`. */
  rpcPort: number;
  /** `NodeOptions.gossipPort`. */
  gossipPort: number;
}

/**
 * Maps `--bind`/`--advertise`/`--rpc-port` onto the `Node` options: `--bind host[:port]` is where
 * both sockets listen (the port is the gossip port), `--advertise host[:port]` what other nodes
 * are told (a port there is the advertised gossip port, for NAT or container port mapping). A
 * wildcard bind without `--advertise` lets `Node` pick a routable interface address.
 */
export function nodeAddresses(cfg: AgentConfig): NodeAddresses {
  const bind = cfg.bind === undefined ? undefined : hostAndPort("--bind", cfg.bind);
  const adv = cfg.advertise === undefined ? undefined : hostAndPort("--advertise", cfg.advertise);
  if (adv && isWildcard(adv.host)) {
    throw new UsageError(
      `--advertise ${adv.host} is a wildcard, which other nodes cannot reach: give the address ` +
        `other nodes reach this one at`,
    );
  }
  const gossipPort = bind?.port ?? DEFAULT_GOSSIP_PORT;
  const out: NodeAddresses = {
    bind: bind?.host ?? adv?.host ?? "127.0.0.1",
    rpcPort: cfg.rpcPort ?? DEFAULT_RPC_PORT,
    gossipPort,
  };
  if (adv) out.advertise = adv.host;
  if (adv?.port !== undefined && adv.port !== gossipPort) {
    out.gossipAdvertise = formatHostPort(adv.host, adv.port);
  }
  return out;
}

/**
 * Host and port of `--http [HOST:]PORT`. Without a host (`9464` or `:9464`) the HTTP server
 * binds the same host as the node's sockets (`--bind`, default 127.0.0.1), so a node bound to a
 * wildcard serves its probes on every interface and a loopback node only on loopback.
 */
export function httpAddress(cfg: AgentConfig): { hostname: string; port: number } | undefined {
  if (cfg.http === undefined) return undefined;
  const text = cfg.http.startsWith(":") ? cfg.http.slice(1) : cfg.http;
  if (/^\d+$/.test(text)) {
    return { hostname: nodeAddresses(cfg).bind, port: port("--http", text) };
  }
  const hp = hostAndPort("--http", text);
  if (hp.port === undefined) {
    throw new UsageError(`--http must be PORT or HOST:PORT, got '${cfg.http}'`);
  }
  return { hostname: hp.host, port: hp.port };
}
