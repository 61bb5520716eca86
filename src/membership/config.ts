/**
 * Configuration of {@linkcode ClusterMembership}: named timing profiles (LAN, WAN, LOCAL) with
 * documented defaults, and validation that explains what is wrong with a bad value.
 *
 * @module
 */
import { RpcError } from "../errors.ts";
import type { Keyring } from "./keyring.ts";
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
  /** Gossip address advertised to others; default the transport's local address. */
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
];

const encoder = new TextEncoder();

/** UTF-8 byte length of `s`. */
export function utf8Length(s: string): number {
  return encoder.encode(s).length;
}

function invalid(message: string): RpcError {
  return new RpcError("invalid_argument", `membership config: ${message}`);
}

/**
 * Merges `config` over its profile's defaults and validates every knob.
 *
 * @throws {RpcError} `invalid_argument` naming the offending option.
 */
export function resolveConfig(config: MembershipConfig = {}): ResolvedConfig {
  if (config === null || typeof config !== "object") throw invalid("config must be an object");
  const profile = config.profile ?? "LAN";
  const base = PROFILES[profile];
  if (!base) throw invalid(`unknown profile ${JSON.stringify(profile)} (LAN, WAN or LOCAL)`);
  const out = { ...base } as ResolvedConfig;
  for (const key of Object.keys(base) as (keyof MembershipTimings)[]) {
    const v = config[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw invalid(`${key} must be a finite number, got ${String(v)}`);
    }
    if (INTEGER_KNOBS.includes(key) && !Number.isInteger(v)) {
      throw invalid(`${key} must be an integer, got ${v}`);
    }
    out[key] = v;
  }
  const positive: (keyof MembershipTimings)[] = [
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
  ];
  for (const key of positive) {
    if (!(out[key] > 0)) throw invalid(`${key} must be > 0, got ${out[key]}`);
  }
  for (
    const key of [
      "indirectChecks",
      "gossipNodes",
      "monitoredMembers",
      "suspicionConfirmations",
    ] as const
  ) {
    if (out[key] < 0) throw invalid(`${key} must be >= 0, got ${out[key]}`);
  }
  if (out.phiAcceptablePauseMs < 0) throw invalid("phiAcceptablePauseMs must be >= 0");
  if (out.userBroadcastReserve < 0) throw invalid("userBroadcastReserve must be >= 0");
  if (out.probeTimeoutMs > out.probeIntervalMs) {
    throw invalid(
      `probeTimeoutMs (${out.probeTimeoutMs}) must not exceed probeIntervalMs (${out.probeIntervalMs})`,
    );
  }
  if (out.suspicionMaxTimeoutMult < 1) throw invalid("suspicionMaxTimeoutMult must be >= 1");
  if (out.maxTagsBytes > 1024) {
    throw invalid("maxTagsBytes must be <= 1024 (tags ride in one datagram)");
  }
  if (out.userBroadcastReserve > 1024) throw invalid("userBroadcastReserve must be <= 1024");
  out.profile = profile;
  out.reliableProbeFallback = config.reliableProbeFallback ?? true;
  if (typeof out.reliableProbeFallback !== "boolean") {
    throw invalid("reliableProbeFallback must be a boolean");
  }
  out.lifeguard = config.lifeguard ?? true;
  if (typeof out.lifeguard !== "boolean") throw invalid("lifeguard must be a boolean");
  out.label = config.label ?? "";
  if (typeof out.label !== "string" || utf8Length(out.label) > MAX_LABEL_BYTES) {
    throw invalid(`label must be a string of at most ${MAX_LABEL_BYTES} bytes`);
  }
  out.eventBufferSize = config.eventBufferSize ?? 1024;
  if (!Number.isInteger(out.eventBufferSize) || out.eventBufferSize < 1) {
    throw invalid("eventBufferSize must be a positive integer");
  }
  if (config.id !== undefined) {
    if (typeof config.id !== "string" || config.id.length === 0) {
      throw invalid("id must be a non-empty string");
    }
    if (utf8Length(config.id) > MAX_ID_BYTES) throw invalid(`id exceeds ${MAX_ID_BYTES} bytes`);
  }
  for (const key of ["advertiseAddr", "rpcAddr"] as const) {
    const v = config[key];
    if (v !== undefined && (typeof v !== "string" || utf8Length(v) > MAX_ADDR_BYTES)) {
      throw invalid(`${key} must be a string of at most ${MAX_ADDR_BYTES} bytes`);
    }
  }
  if (
    config.bindPort !== undefined &&
    (!Number.isInteger(config.bindPort) || config.bindPort < 0 || config.bindPort > 65535)
  ) throw invalid(`bindPort must be an integer in 0..65535, got ${config.bindPort}`);
  if (
    config.incarnation !== undefined &&
    (!Number.isInteger(config.incarnation) || config.incarnation < 0 ||
      config.incarnation > 0xffff_ffff)
  ) throw invalid("incarnation must be an integer in 0..2^32-1");
  return out;
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
