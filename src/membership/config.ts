/**
 * Configuration of {@linkcode ClusterMembership}: named timing profiles (LAN, WAN, LOCAL) with
 * documented defaults, and validation that explains what is wrong with a bad value.
 *
 * @module
 */
import { RpcError } from "../errors.ts";
import { isWildcard, requireHostPort } from "../addr.ts";
import {
  checkBoolean,
  checkDurationMs,
  checkInt,
  checkNumber,
  checkPlainObject,
  checkString,
  checkStringArray,
  invalidOption,
} from "../options.ts";
import { tagsEncodedSize } from "./codec.ts";
import { Keyring } from "./keyring.ts";
import type { Clock, Transport } from "./transport.ts";
import type { Tags } from "./types.ts";

/** A named set of protocol timings. */
export type Profile = "LAN" | "WAN" | "LOCAL";

/** Every timing and sizing knob of the protocol. All durations are milliseconds. */
export interface MembershipTimings {
  /** How often the round-robin probe picks the next member. LAN 1000, WAN 5000, LOCAL 200. */
  probeIntervalMs: number;
  /** How long a direct ping waits for an ack before indirect probes start. LAN 500, WAN 3000, LOCAL 100. */
  probeTimeoutMs: number;
  /** Members asked to ping a target indirectly (ping-req) after a direct ping fails. Default 3. */
  indirectChecks: number;
  /** How often piggyback broadcasts are gossiped to random members. LAN 200, WAN 500, LOCAL 50. */
  gossipIntervalMs: number;
  /** Random members each gossip round sends to. LAN 3, WAN 4, LOCAL 3. */
  gossipNodes: number;
  /** Retransmit limit multiplier: a broadcast is sent `mult × ceil(log10(N+1))` times. Default 4. */
  retransmitMult: number;
  /** Suspicion timeout multiplier: `mult × max(1, log10 N) × probeInterval`. LAN 2, WAN 4, LOCAL 4. */
  suspicionMult: number;
  /** Upper bound of the suspicion timeout, as a multiple of the lower bound. Default 6. */
  suspicionMaxTimeoutMult: number;
  /**
   * Lifeguard: independent confirmations (k) that shrink a suspicion from the upper to the lower
   * bound. Default 3 (the K ring monitors supply them quickly).
   */
  suspicionConfirmations: number;
  /** Lifeguard local health: timeouts scale up to this factor when this node is unhealthy. Default 8. */
  awarenessMaxMultiplier: number;
  /** Anti-entropy full sync interval at ≤ 32 members (scaled up with N). LAN 30000, WAN 60000, LOCAL 3000. */
  pushPullIntervalMs: number;
  /** Deadline of one push-pull exchange. LAN 10000, WAN 30000, LOCAL 3000. */
  pushPullTimeoutMs: number;
  /** How long `join` keeps trying its seeds before failing. LAN 10000, WAN 30000, LOCAL 3000. */
  bootstrapTimeoutMs: number;
  /** How long dead and left members stay as tombstones before they are removed. LAN 60000, WAN 300000, LOCAL 10000. */
  reapIntervalMs: number;
  /** Ring successors each node heartbeat-pings to feed phi accrual (K). Default 8 (LOCAL 4). */
  monitoredMembers: number;
  /** Interval of heartbeat pings to the monitored members. LAN 1000, WAN 5000, LOCAL 250. */
  heartbeatIntervalMs: number;
  /** Phi over which a monitored member is probed indirectly and then suspected. Default 8. */
  phiThreshold: number;
  /** Phi: minimum standard deviation of the inter-arrival window. LAN 100, WAN 500, LOCAL 100. */
  phiMinStdDeviationMs: number;
  /** Phi: pause tolerated before phi rises. LAN 0, WAN 1000, LOCAL 250. */
  phiAcceptablePauseMs: number;
  /** Phi: window of inter-arrival samples kept per member. Default 200. */
  phiMaxSampleSize: number;
  /** Partition detection: the live view must be unchanged this long to become "stable". LAN 5000, WAN 20000, LOCAL 1000. */
  stableAfterMs: number;
  /** Largest encoded tags (keys + values + framing), bytes. Default 512. */
  maxTagsBytes: number;
  /** Bytes of each datagram kept for user broadcasts when some are queued. Default 256. */
  userBroadcastReserve: number;
  /** Most membership broadcasts queued; the most-sent are pruned past it. Default 4096. */
  maxBroadcastQueue: number;
  /**
   * How often a member declared dead is tried again with a push-pull (serf's reconnect), so a
   * partition heals once the network is back. LAN 10000, WAN 30000, LOCAL 1000.
   */
  reconnectIntervalMs: number;
  /**
   * How long a member declared dead stays on the reconnect list (kept apart from the gossip
   * tombstone, which is reaped after `reapIntervalMs`). Default 86400000 (24 h, serf's).
   */
  reconnectTimeoutMs: number;
  /** Background join (`seeds` option): first retry delay, doubled per failure. LAN 1000, WAN 2000, LOCAL 200. */
  retryJoinIntervalMs: number;
  /** Background join: longest delay between attempts. LAN 30000, WAN 60000, LOCAL 5000. */
  retryJoinMaxIntervalMs: number;
  /** Background join: attempts before giving up; 0 (default) retries until joined or shut down. */
  retryJoinMax: number;
  /**
   * Most member records held, tombstones included; records of new members past it are dropped
   * and counted (`droppedTableFull`). Default 16384.
   */
  maxMembers: number;
  /**
   * Most member records one push-pull may carry; a larger sync is refused whole and counted
   * (`droppedSyncs`). Default 16384.
   */
  maxSyncRecords: number;
}

/** Boolean knobs of the protocol. */
export interface MembershipSwitches {
  /**
   * When a direct ping fails, also ping over the transport's reliable channel alongside the
   * indirect probes (memberlist's TCP fallback), so datagram loss alone does not raise
   * suspicions. Default true.
   */
  reliableProbeFallback: boolean;
}

/** Options of {@linkcode ClusterMembership}. Every timing knob of {@linkcode MembershipTimings} may be given. */
export interface MembershipConfig extends Partial<MembershipTimings>, Partial<MembershipSwitches> {
  /** Unique node id; default a random UUID. At most 128 UTF-8 bytes. */
  id?: string;
  /** Interface the default UDP transport binds; default `127.0.0.1`. */
  bindHost?: string;
  /** Port the default UDP transport binds; default 0 (any free port). */
  bindPort?: number;
  /**
   * Gossip address advertised to others (`host:port`, IPv6 in brackets); default the transport's
   * local address. Must not be a wildcard: bind `0.0.0.0`/`::` with `bindHost` and advertise a
   * routable address here.
   */
  advertiseAddr?: string;
  /** The node's RPC (QUIC) address, disseminated with its member record; default empty. */
  rpcAddr?: string;
  /** Initial tags. */
  tags?: Tags;
  /** Timing profile the defaults come from; default `"LAN"`. */
  profile?: Profile;
  /** Cluster label: packets with another label are dropped (and counted). Default empty. */
  label?: string;
  /** Seals every datagram and sync with AES-GCM when set. */
  keyring?: Keyring;
  /** Lifeguard (awareness, confirmation-shrunk suspicion, buddy system); default true. */
  lifeguard?: boolean;
  /**
   * Starting incarnation, 0..2^32−1; default 0 (refutation raises it past any stale record
   * anyway). Incarnations wrap around as serial numbers (see `incarnation.ts`).
   */
  incarnation?: number;
  /** Per-subscriber event buffer when `subscribe()` is called without one; default 1024. */
  eventBufferSize?: number;
  /** Network; default a UDP transport bound to `bindHost:bindPort`. */
  transport?: Transport;
  /** Time source; default the system clock. */
  clock?: Clock;
  /** Random source in [0, 1) for probe order and member selection; default `Math.random`. */
  random?: () => number;
  /** Called with the payload of every user broadcast received (see `broadcast()`). */
  onUserMessage?: (payload: Uint8Array, from: string) => void;
  /**
   * Gossip addresses (`host:port`, IPv6 in brackets; host names are resolved again on every
   * attempt, to all their A/AAAA records) to join in the background once started: retried with
   * backoff (`retryJoinIntervalMs` doubling up to `retryJoinMaxIntervalMs`, `retryJoinMax`
   * attempts) until one answers. Also re-joined while the view is partitioned. An empty list
   * (default) starts a new cluster. See `ClusterMembership.whenJoined()`.
   */
  seeds?: readonly string[];
  /**
   * Resolves a seed host name to IP addresses; default: IP literals as-is, `localhost` (and
   * `*.localhost`) to `127.0.0.1` and `::1`, anything else with `Deno.resolveDns` (A and AAAA).
   */
  resolveHost?: (hostname: string) => Promise<string[]>;
  /**
   * Prefix for option names in error messages, for callers that nest these options (e.g.
   * `"membership."`); default empty.
   */
  optionPrefix?: string;
}

/** The timings of each named profile. */
export const PROFILES: Readonly<Record<Profile, Readonly<MembershipTimings>>> = {
  LAN: {
    probeIntervalMs: 1000,
    probeTimeoutMs: 500,
    indirectChecks: 3,
    gossipIntervalMs: 200,
    gossipNodes: 3,
    retransmitMult: 4,
    suspicionMult: 2,
    suspicionMaxTimeoutMult: 6,
    suspicionConfirmations: 3,
    awarenessMaxMultiplier: 8,
    pushPullIntervalMs: 30_000,
    pushPullTimeoutMs: 10_000,
    bootstrapTimeoutMs: 10_000,
    reapIntervalMs: 60_000,
    monitoredMembers: 8,
    heartbeatIntervalMs: 1000,
    phiThreshold: 8,
    phiMinStdDeviationMs: 100,
    phiAcceptablePauseMs: 0,
    phiMaxSampleSize: 200,
    stableAfterMs: 5000,
    maxTagsBytes: 512,
    userBroadcastReserve: 256,
    maxBroadcastQueue: 4096,
    reconnectIntervalMs: 10_000,
    reconnectTimeoutMs: 86_400_000,
    retryJoinIntervalMs: 1000,
    retryJoinMaxIntervalMs: 30_000,
    retryJoinMax: 0,
    maxMembers: 16_384,
    maxSyncRecords: 16_384,
  },
  WAN: {
    probeIntervalMs: 5000,
    probeTimeoutMs: 3000,
    indirectChecks: 3,
    gossipIntervalMs: 500,
    gossipNodes: 4,
    retransmitMult: 4,
    suspicionMult: 4,
    suspicionMaxTimeoutMult: 6,
    suspicionConfirmations: 3,
    awarenessMaxMultiplier: 8,
    pushPullIntervalMs: 60_000,
    pushPullTimeoutMs: 30_000,
    bootstrapTimeoutMs: 30_000,
    reapIntervalMs: 300_000,
    monitoredMembers: 8,
    heartbeatIntervalMs: 5000,
    phiThreshold: 8,
    phiMinStdDeviationMs: 500,
    phiAcceptablePauseMs: 1000,
    phiMaxSampleSize: 200,
    stableAfterMs: 20_000,
    maxTagsBytes: 512,
    userBroadcastReserve: 256,
    maxBroadcastQueue: 4096,
    reconnectIntervalMs: 30_000,
    reconnectTimeoutMs: 86_400_000,
    retryJoinIntervalMs: 2000,
    retryJoinMaxIntervalMs: 60_000,
    retryJoinMax: 0,
    maxMembers: 16_384,
    maxSyncRecords: 16_384,
  },
  LOCAL: {
    probeIntervalMs: 200,
    probeTimeoutMs: 100,
    indirectChecks: 3,
    gossipIntervalMs: 50,
    gossipNodes: 3,
    retransmitMult: 4,
    suspicionMult: 4,
    suspicionMaxTimeoutMult: 6,
    suspicionConfirmations: 3,
    awarenessMaxMultiplier: 8,
    pushPullIntervalMs: 3000,
    pushPullTimeoutMs: 3000,
    bootstrapTimeoutMs: 3000,
    reapIntervalMs: 10_000,
    monitoredMembers: 4,
    heartbeatIntervalMs: 250,
    phiThreshold: 8,
    phiMinStdDeviationMs: 100,
    phiAcceptablePauseMs: 250,
    phiMaxSampleSize: 200,
    stableAfterMs: 1000,
    maxTagsBytes: 512,
    userBroadcastReserve: 256,
    maxBroadcastQueue: 4096,
    reconnectIntervalMs: 1000,
    reconnectTimeoutMs: 86_400_000,
    retryJoinIntervalMs: 200,
    retryJoinMaxIntervalMs: 5000,
    retryJoinMax: 0,
    maxMembers: 16_384,
    maxSyncRecords: 16_384,
  },
};

/** A fully resolved configuration (profile defaults merged with overrides, validated). */
export interface ResolvedConfig extends MembershipTimings, MembershipSwitches {
  /** The profile the defaults came from. */
  profile: Profile;
  /** Lifeguard switch. */
  lifeguard: boolean;
  /** Cluster label. */
  label: string;
  /** Default per-subscriber event buffer. */
  eventBufferSize: number;
  /** Prefix of option names in error messages. */
  optionPrefix: string;
}

/** Largest node id, UTF-8 bytes. */
export const MAX_ID_BYTES = 128;
/** Largest address string, UTF-8 bytes. */
export const MAX_ADDR_BYTES = 255;
/** Largest label, UTF-8 bytes. */
export const MAX_LABEL_BYTES = 255;

const INTEGER_KNOBS: readonly (keyof MembershipTimings)[] = [
  "indirectChecks",
  "gossipNodes",
  "retransmitMult",
  "suspicionMult",
  "suspicionMaxTimeoutMult",
  "suspicionConfirmations",
  "awarenessMaxMultiplier",
  "monitoredMembers",
  "phiMaxSampleSize",
  "maxTagsBytes",
  "userBroadcastReserve",
  "maxBroadcastQueue",
  "retryJoinMax",
  "maxMembers",
  "maxSyncRecords",
];

/** Knobs that must be > 0 (the others may be 0). */
const POSITIVE_KNOBS: readonly (keyof MembershipTimings)[] = [
  "probeIntervalMs",
  "probeTimeoutMs",
  "gossipIntervalMs",
  "retransmitMult",
  "suspicionMult",
  "suspicionMaxTimeoutMult",
  "awarenessMaxMultiplier",
  "pushPullIntervalMs",
  "pushPullTimeoutMs",
  "bootstrapTimeoutMs",
  "reapIntervalMs",
  "heartbeatIntervalMs",
  "phiThreshold",
  "phiMinStdDeviationMs",
  "phiMaxSampleSize",
  "stableAfterMs",
  "maxTagsBytes",
  "maxBroadcastQueue",
  "reconnectIntervalMs",
  "reconnectTimeoutMs",
  "retryJoinIntervalMs",
  "retryJoinMaxIntervalMs",
  "maxMembers",
  "maxSyncRecords",
];

const encoder = new TextEncoder();

/** UTF-8 byte length of `s`. */
export function utf8Length(s: string): number {
  return encoder.encode(s).length;
}

function checkFunction(name: string, v: unknown): void {
  if (v !== undefined && typeof v !== "function") throw invalidOption(name, "a function", v);
}

function checkMethods(name: string, v: unknown, methods: readonly string[]): void {
  if (v === undefined) return;
  if (
    typeof v !== "object" || v === null ||
    methods.some((m) => typeof (v as Record<string, unknown>)[m] !== "function")
  ) throw invalidOption(name, `an object with ${methods.join(", ")} methods`, v);
}

/**
 * Checks a gossip address to advertise: `host:port`, not a wildcard (`0.0.0.0`/`::` binds every
 * interface but nobody can reach it there).
 *
 * @throws {RpcError} `invalid_argument` naming option `name` and the fix.
 */
export function checkAdvertiseAddr(name: string, addr: unknown): string {
  const hp = requireHostPort(name, addr);
  if (isWildcard(hp.hostname)) {
    throw new RpcError(
      "invalid_argument",
      `${name}: ${
        JSON.stringify(addr)
      } is a wildcard address, which no other node can reach: advertise this host's routable address (e.g. "10.0.0.5:${hp.port}" or "[fd00::5]:${hp.port}")`,
    );
  }
  if (utf8Length(addr as string) > MAX_ADDR_BYTES) {
    throw invalidOption(name, `at most ${MAX_ADDR_BYTES} bytes`, addr);
  }
  return addr as string;
}

/**
 * Checks a seed list: an array of `host:port` strings (IPv6 in brackets).
 *
 * @throws {RpcError} `invalid_argument` naming the option (and the index of a bad entry).
 */
export function checkSeeds(name: string, seeds: unknown): string[] {
  const list = checkStringArray(name, seeds, []);
  list.forEach((s, i) => requireHostPort(`${name}[${i}]`, s));
  return list;
}

/**
 * Merges `config` over its profile's defaults and validates every option. Every error is
 * `invalid_argument` naming the option as written (with `optionPrefix` in front).
 *
 * @throws {RpcError} `invalid_argument` naming the offending option.
 */
export function resolveConfig(config: MembershipConfig = {}): ResolvedConfig {
  const c = checkPlainObjectLike("options", config);
  const prefix = checkString("optionPrefix", c.optionPrefix, "", true);
  const name = (k: string) => prefix + k;
  const profile = (c.profile ?? "LAN") as Profile;
  const base = PROFILES[profile];
  if (typeof profile !== "string" || !Object.hasOwn(PROFILES, profile)) {
    throw invalidOption(name("profile"), `"LAN", "WAN" or "LOCAL"`, c.profile);
  }
  const out = { ...base } as ResolvedConfig;
  for (const key of Object.keys(base) as (keyof MembershipTimings)[]) {
    const v = c[key];
    const min = POSITIVE_KNOBS.includes(key) ? (INTEGER_KNOBS.includes(key) ? 1 : 1e-9) : 0;
    if (key.endsWith("Ms")) {
      // Timers cannot hold 2^31 ms or more (they would fire at once): refused, not clamped.
      out[key] = checkDurationMs(name(key), v, base[key], min);
    } else if (INTEGER_KNOBS.includes(key)) {
      out[key] = checkInt(name(key), v, base[key], min, 2 ** 31 - 1);
    } else {
      out[key] = checkNumber(name(key), v, base[key], min, 1e9);
    }
  }
  if (out.probeTimeoutMs > out.probeIntervalMs) {
    throw invalidOption(
      name("probeTimeoutMs"),
      `at most probeIntervalMs (${out.probeIntervalMs})`,
      out.probeTimeoutMs,
    );
  }
  if (out.maxTagsBytes > 1024) {
    throw invalidOption(
      name("maxTagsBytes"),
      "at most 1024 (tags ride in one datagram)",
      out.maxTagsBytes,
    );
  }
  if (out.userBroadcastReserve > 1024) {
    throw invalidOption(name("userBroadcastReserve"), "at most 1024", out.userBroadcastReserve);
  }
  if (out.retryJoinMaxIntervalMs < out.retryJoinIntervalMs) {
    throw invalidOption(
      name("retryJoinMaxIntervalMs"),
      `at least retryJoinIntervalMs (${out.retryJoinIntervalMs})`,
      out.retryJoinMaxIntervalMs,
    );
  }
  out.profile = profile;
  out.optionPrefix = prefix;
  out.reliableProbeFallback = checkBoolean(
    name("reliableProbeFallback"),
    c.reliableProbeFallback,
    true,
  );
  out.lifeguard = checkBoolean(name("lifeguard"), c.lifeguard, true);
  out.label = checkString(name("label"), c.label, "", true);
  if (utf8Length(out.label) > MAX_LABEL_BYTES) {
    throw invalidOption(name("label"), `at most ${MAX_LABEL_BYTES} bytes`, out.label);
  }
  out.eventBufferSize = checkInt(name("eventBufferSize"), c.eventBufferSize, 1024, 1, 2 ** 24);
  const id = checkString(name("id"), c.id, undefined);
  if (id !== undefined && utf8Length(id) > MAX_ID_BYTES) {
    throw invalidOption(name("id"), `at most ${MAX_ID_BYTES} bytes`, id);
  }
  if (c.advertiseAddr !== undefined) checkAdvertiseAddr(name("advertiseAddr"), c.advertiseAddr);
  const rpcAddr = checkString(name("rpcAddr"), c.rpcAddr, "", true);
  if (utf8Length(rpcAddr) > MAX_ADDR_BYTES) {
    throw invalidOption(name("rpcAddr"), `at most ${MAX_ADDR_BYTES} bytes`, rpcAddr);
  }
  checkString(name("bindHost"), c.bindHost, undefined);
  checkInt(name("bindPort"), c.bindPort, 0, 0, 65535);
  checkInt(name("incarnation"), c.incarnation, 0, 0, 0xffff_ffff);
  if (c.tags !== undefined) checkPlainObject(name("tags"), c.tags);
  if (c.keyring !== undefined && !(c.keyring instanceof Keyring)) {
    throw invalidOption(name("keyring"), "a Keyring (new Keyring([key]))", c.keyring);
  }
  checkMethods(name("transport"), c.transport, [
    "sendPacket",
    "onPacket",
    "request",
    "onRequest",
    "close",
  ]);
  checkMethods(name("clock"), c.clock, ["now", "setTimeout", "clearTimeout"]);
  checkFunction(name("random"), c.random);
  checkFunction(name("onUserMessage"), c.onUserMessage);
  checkFunction(name("resolveHost"), c.resolveHost);
  if (c.seeds !== undefined) checkSeeds(name("seeds"), c.seeds);
  return out;
}

/** Like `checkPlainObject`, but accepts objects with any prototype (option bags may be classes). */
function checkPlainObjectLike(name: string, v: unknown): MembershipConfig {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw invalidOption(name, "an object", v);
  }
  return v as MembershipConfig;
}

/**
 * Lifeguard's lower bound of the suspicion timeout:
 * `suspicionMult × max(1, log10(max(1, n))) × probeInterval` (memberlist's formula).
 */
export function suspicionTimeoutMs(
  suspicionMult: number,
  n: number,
  probeIntervalMs: number,
): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.floor(suspicionMult * nodeScale * probeIntervalMs);
}

/** How many times a broadcast is retransmitted in a cluster of `n`: `mult × ceil(log10(n + 1))`. */
export function retransmitLimit(mult: number, n: number): number {
  return mult * Math.ceil(Math.log10(n + 1));
}

/** Push-pull interval at `n` members: unchanged up to 32, then ×(ceil(log2 n − log2 32) + 1). */
export function pushPullIntervalMs(baseMs: number, n: number): number {
  if (n <= 32) return baseMs;
  const multiplier = Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
  return baseMs * multiplier;
}

/**
 * An upper bound on how long a crash takes to be declared dead at every member, for tests and
 * docs: one full (health-scaled) probe round to notice it, the longest suspicion, and a generous
 * dissemination allowance of push-pull interval.
 */
export function failureDetectionBoundMs(config: MembershipTimings, n: number): number {
  const min = suspicionTimeoutMs(config.suspicionMult, n, config.probeIntervalMs);
  const max = min * config.suspicionMaxTimeoutMult;
  return n * config.probeIntervalMs / Math.max(1, config.monitoredMembers) +
    config.probeIntervalMs * config.awarenessMaxMultiplier + max +
    pushPullIntervalMs(config.pushPullIntervalMs, n);
}

/**
 * Checks node tags: an object of string values, keys 1..255 bytes, values at most 255, at most
 * `maxTagsBytes` encoded. Returns a frozen copy.
 *
 * @throws {RpcError} `invalid_argument` saying which tag is wrong.
 */
export function checkTags(tags: Tags, maxTagsBytes: number): Tags {
  if (tags === null || typeof tags !== "object" || Array.isArray(tags)) {
    throw new RpcError("invalid_argument", "tags must be an object of string values");
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) {
    if (typeof v !== "string") {
      throw new RpcError("invalid_argument", `tag ${JSON.stringify(k)} must be a string`);
    }
    if (k.length === 0 || utf8Length(k) > 255 || utf8Length(v) > 255 || k === "__proto__") {
      throw new RpcError(
        "invalid_argument",
        `tag ${JSON.stringify(k.slice(0, 40))}: keys must be 1..255 bytes, values at most 255`,
      );
    }
    out[k] = v;
  }
  const size = tagsEncodedSize(out);
  if (size > maxTagsBytes) {
    throw new RpcError(
      "invalid_argument",
      `tags take ${size} bytes encoded, over the maxTagsBytes limit of ${maxTagsBytes}`,
    );
  }
  return Object.freeze(out);
}
