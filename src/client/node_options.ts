/**
 * The options of `Node.start` and their checks: every bad option is `invalid_argument` naming the
 * option as the user wrote it, before anything is bound. Addresses are resolved here too: what
 * each socket binds, and what other nodes are told to call.
 *
 * @module
 */

import type { Logger } from "../logger.ts";
import type { ObserveOptions } from "../observe/observer.ts";
import type { DevCa, TlsConfig } from "../rpc/certs.ts";
import type {
  BidiStreamHandler,
  ClientStreamHandler,
  Handler,
  RpcServerOptions,
  ServerStreamHandler,
} from "../rpc/types.ts";
import type { ClusterMembershipOptions } from "../membership/membership.ts";
import type { Profile } from "../membership/config.ts";
import { Keyring } from "../membership/keyring.ts";
import type { Tags } from "../membership/types.ts";
import { MAX_TIE_STREAK, type StrategyName } from "../balance/balancer.ts";
import type { FilterInput } from "../registry/filter.ts";
import type { ClusterClientOptions } from "./cluster_client.ts";
import type { LeaveOnSignalsOptions } from "./lifecycle.ts";
import { RpcError } from "../errors.ts";
import { parseHostPort, requireHostPort } from "../addr.ts";
import { checkAdvertiseHost } from "../advertise.ts";
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

/**
 * Options of `Node.start`. Every field has a documented default.
 *
 * Addresses: both sockets (RPC: QUIC over UDP on `rpcPort`; gossip: UDP and TCP on `gossipPort`)
 * bind `bind`. Other nodes are told to call `advertise` (with the bound ports), which defaults to
 * `bind`; when `bind` is a wildcard (`0.0.0.0` or `::`) it defaults to the first private address
 * of this host's interfaces (as memberlist does), and the node refuses to start when there is none.
 * `rpcAdvertise`/`gossipAdvertise` override a whole advertised `host:port` (port mapping, NAT).
 *
 * @example
 * ```ts
 * import { Node, type NodeOptions, silentLogger } from "@rpcnet/cluster";
 *
 * // A worker on this host: joins the seed, serves `compute`, shows its status page.
 * const options: NodeOptions = {
 *   id: "worker-1",
 *   profile: "LOCAL",
 *   tags: { role: "worker", zone: "eu-1" },
 *   seeds: ["127.0.0.1:7946"],
 *   handlers: { compute: (req) => (req as { n: number }).n * 2 },
 *   client: { perTryTimeoutMs: 500 }, // passed to `node.client`
 *   http: { port: 0 }, // /metrics, /healthz, /readyz and the status page
 *   logger: silentLogger,
 * };
 * const node = await Node.start(options);
 * console.log(node.id, node.ready);
 * ```
 */
export interface NodeOptions {
  /** Unique node id. Default: a random UUID. */
  id?: string;
  /**
   * Host both sockets bind: an IP address, or `"0.0.0.0"`/`"::"` for every interface.
   * Default `"127.0.0.1"`.
   */
  bind?: string;
  /** Older name of `bind` (give one of the two). */
  hostname?: string;
  /**
   * Host (IP address or DNS name, without a port) other nodes reach this node at, for RPC and
   * gossip. Never a wildcard. Default: `bind`, or for a wildcard `bind` the first private address
   * of this host's interfaces.
   */
  advertise?: string;
  /** RPC (QUIC/UDP) port to bind; 0 picks one. Default 0. */
  rpcPort?: number;
  /** Gossip port (UDP and TCP) to bind; 0 picks one. Default 0. */
  gossipPort?: number;
  /** The RPC `host:port` other nodes call, when it differs from `advertise` + the bound port. */
  rpcAdvertise?: string;
  /** The gossip `host:port` other nodes use, when it differs from `advertise` + the bound port. */
  gossipAdvertise?: string;
  /**
   * Gossip addresses (`host:port`, IPv6 as `[addr]:port`) of nodes to join; a host name may
   * resolve to several addresses (a Kubernetes headless service) and is resolved again on every
   * attempt. The node keeps retrying in the background with backoff (serf's `retry_join`) until
   * one answers; an answer from this node itself never counts. Default `[]`: a new cluster.
   */
  seeds?: readonly string[];
  /**
   * How long `Node.start` waits for the first join before it returns anyway (the join goes on in
   * the background; `ready` stays false until it succeeds). 0 returns at once. Default: the
   * profile's `bootstrapTimeoutMs` (LAN 10 s, LOCAL 3 s).
   */
  joinWaitMs?: number;
  /**
   * Fail `Node.start` (`unavailable`, everything started is stopped) when no seed answered within
   * `joinWaitMs`, instead of returning a node that goes on joining. Default `false`.
   */
  requireJoin?: boolean;
  /** This node's tags, e.g. `{role: "worker", zone: "eu-1"}`. Default `{}`. */
  tags?: Tags;
  /** Membership timing profile. Default `"LAN"`; `"LOCAL"` for tests and demos. */
  profile?: Profile;
  /** Cluster label: nodes with another label ignore this one's gossip. */
  label?: string;
  /** Gossip encryption keys. Default: none (plaintext, unauthenticated gossip). */
  keyring?: Keyring;
  /** Cluster secret for RPC connections (server requires it, client proves it). */
  secret?: string | Uint8Array;
  /**
   * Development CA: signs this node's RPC certificate (covering the advertised and bound
   * addresses, `serverName`, and loopback) and is trusted when calling other nodes. Give every
   * node the same one (`saveDevCa`/`loadDevCa`). Default: a CA of this process (single-process
   * clusters only).
   */
  devCa?: DevCa;
  /** Production certificate of this node's RPC server (instead of one from `devCa`). */
  tls?: TlsConfig;
  /** CA certificates to trust when calling other nodes (with `tls`). */
  caCerts?: string[];
  /**
   * Cluster-wide TLS server name: every node presents a certificate for this name and callers
   * verify it whatever address they call (as consul's `server.<dc>.consul`). With `devCa` the
   * certificate is issued for it. Default: callers verify the address they call.
   */
  serverName?: string;
  /**
   * TCP lanes for unary RPC (default `false`): this node's server also listens with TLS over
   * TCP on the RPC port number, and `node.client` sends small unary calls to workers that offer
   * it over TCP instead of QUIC. Faster unary calls (Deno's TLS/TCP costs less per call than its
   * QUIC; measured on loopback, raw framed echo: 250K against 175K req/s at 64 in flight, 9.6K
   * against 5.9K at one), but the TCP port must be open between nodes as well as the UDP one.
   * Handshake, secret, streaming calls and frames over 16 KiB stay on QUIC. A caller without it
   * uses QUIC with any worker; clients from before TCP lanes cannot call a node that has it.
   * `server.tcpLanes` and `client.tcpLanes` override it per side.
   */
  tcpLanes?: boolean;
  /** Balancing strategy of `node.client`. Default `"least_connections"`. */
  strategy?: StrategyName;
  /** Seed of random strategies (deterministic tests). */
  seed?: number;
  /**
   * `least_connections`: picks in a row a tie goes to the worker picked last before it goes to
   * another (see `BalancerOptions.tieStreak`); 1 breaks every tie at random. Default 1023.
   */
  tieStreak?: number;
  /**
   * `least_connections`: the longest a streak lasts, ms; once it has, the next tie goes to another
   * worker (see `BalancerOptions.tieStreakMs`). 0: no time bound. Default 250.
   */
  tieStreakMs?: number;
  /** Leave suspect nodes out of selection. Default `false`. */
  excludeSuspect?: boolean;
  /** Whether this node may select itself. Default `true`. */
  includeLocal?: boolean;
  /** Filter of calls that give none. Default: every node serving RPC. */
  defaultFilter?: FilterInput;
  /** Unary handlers, registered before the node becomes visible to others. */
  handlers?: Readonly<Record<string, Handler>>;
  /** Server-streaming handlers, registered before the node becomes visible. */
  serverStreams?: Readonly<Record<string, ServerStreamHandler>>;
  /** Client-streaming handlers, registered before the node becomes visible. */
  clientStreams?: Readonly<Record<string, ClientStreamHandler>>;
  /** Bidirectional-streaming handlers, registered before the node becomes visible. */
  bidiStreams?: Readonly<Record<string, BidiStreamHandler>>;
  /**
   * Leave gracefully on SIGTERM/SIGINT (NodeLeft everywhere, in-flight calls drained), then exit
   * the process. `true` for the defaults of {@linkcode LeaveOnSignalsOptions}. Default `false`.
   */
  leaveOnSignals?: boolean | LeaveOnSignalsOptions;
  /** More membership settings (timing knobs), passed through. */
  membership?: Partial<ClusterMembershipOptions>;
  /** More RPC server settings, passed through. */
  server?: Partial<RpcServerOptions>;
  /** More cluster client settings, passed through. */
  client?: Partial<ClusterClientOptions>;
  /**
   * Serve `/metrics`, `/healthz`, `/readyz` and the status page on this HTTP port (see
   * `observe()`). Default: no HTTP server.
   */
  http?: ObserveOptions;
  /**
   * Where member state changes, dropped datagrams, handler errors and authentication failures
   * are logged. Default: warnings and errors as JSON lines on stderr; `silentLogger` silences.
   */
  logger?: Logger;
}

/** The checked options with the addresses worked out (hosts without brackets). */
export interface ResolvedNodeOptions {
  /** Host both sockets bind. */
  bind: string;
  /** Advertised host, or undefined when it must be picked from the interfaces (wildcard bind). */
  advertise: string | undefined;
  /** The option to name when the advertised host cannot be picked. */
  advertiseOption: string;
  rpcPort: number;
  gossipPort: number;
  rpcAdvertise: string | undefined;
  gossipAdvertise: string | undefined;
  seeds: string[];
  /** How long start waits for the first join, ms (undefined: the profile's bootstrap timeout). */
  joinWaitMs: number | undefined;
  /** Whether start fails when not joined within the wait. */
  requireJoin: boolean;
  /** Whether the server and client use TCP lanes. */
  tcpLanes: boolean;
}

function stripBrackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function checkHandlers(name: string, v: unknown): void {
  if (v === undefined) return;
  const o = checkPlainObject(name, v);
  for (const [method, h] of Object.entries(o)) {
    if (typeof h !== "function") throw invalidOption(`${name}.${method}`, "a function", h);
  }
}

function checkPem(name: string, v: unknown, fields: readonly string[]): void {
  if (v === undefined) return;
  const o = checkPlainObject(name, v);
  for (const f of fields) {
    if (typeof o[f] !== "string" || !(o[f] as string).includes("-----BEGIN")) {
      throw invalidOption(`${name}.${f}`, "PEM text", o[f]);
    }
  }
}

/**
 * Checks every option of `Node.start`, naming the option as the user wrote it.
 *
 * @throws {RpcError} `invalid_argument` for the first bad option
 */
export function resolveNodeOptions(options: NodeOptions): ResolvedNodeOptions {
  if (options === null || typeof options !== "object") {
    throw invalidOption("Node.start options", "an object", options);
  }
  checkString("id", options.id, undefined);
  if (options.bind !== undefined && options.hostname !== undefined) {
    throw new RpcError(
      "invalid_argument",
      "bind and hostname are the same option: give only bind",
    );
  }
  const bindName = options.hostname !== undefined ? "hostname" : "bind";
  const bind = stripBrackets(
    checkString(bindName, options.bind ?? options.hostname, "127.0.0.1"),
  );
  if (parseHostPort(bind) !== undefined) {
    throw invalidOption(bindName, "a host without a port (ports are rpcPort and gossipPort)", bind);
  }
  let advertise: string | undefined = checkString("advertise", options.advertise, undefined);
  if (advertise !== undefined) {
    if (parseHostPort(advertise) !== undefined) {
      throw invalidOption(
        "advertise",
        "a host without a port (rpcAdvertise/gossipAdvertise take host:port)",
        advertise,
      );
    }
    advertise = stripBrackets(advertise);
    checkAdvertiseHost("advertise", advertise);
  }
  const rpcPort = checkInt("rpcPort", options.rpcPort, 0, 0, 65535);
  const gossipPort = checkInt("gossipPort", options.gossipPort, 0, 0, 65535);
  for (const name of ["rpcAdvertise", "gossipAdvertise"] as const) {
    const v = options[name];
    if (v === undefined) continue;
    checkAdvertiseHost(name, requireHostPort(name, v).hostname);
  }
  const seeds = checkStringArray("seeds", options.seeds, []);
  seeds.forEach((s, i) => requireHostPort(`seeds[${i}]`, s));
  const joinWaitMs = options.joinWaitMs === undefined
    ? undefined
    : checkDurationMs("joinWaitMs", options.joinWaitMs, 0);
  const requireJoin = checkBoolean("requireJoin", options.requireJoin, false);
  if (options.tags !== undefined) {
    for (const [k, v] of Object.entries(checkPlainObject("tags", options.tags))) {
      if (typeof v !== "string") throw invalidOption(`tags.${k}`, "a string", v);
    }
  }
  checkString("profile", options.profile, undefined);
  checkString("label", options.label, undefined, true);
  if (options.keyring !== undefined && !(options.keyring instanceof Keyring)) {
    throw invalidOption("keyring", "a Keyring (await Keyring.create(...))", options.keyring);
  }
  if (
    options.secret !== undefined &&
    !((typeof options.secret === "string" && options.secret.length > 0) ||
      options.secret instanceof Uint8Array)
  ) {
    throw invalidOption("secret", "a non-empty string or a Uint8Array", options.secret);
  }
  checkPem("devCa", options.devCa, ["certPem", "keyPem"]);
  checkPem("tls", options.tls, ["certPem", "keyPem"]);
  if (options.caCerts !== undefined) checkStringArray("caCerts", options.caCerts, []);
  checkString("serverName", options.serverName, undefined);
  const tcpLanes = checkBoolean("tcpLanes", options.tcpLanes, false);
  checkString("strategy", options.strategy, undefined);
  checkNumber("seed", options.seed, 0, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  checkInt("tieStreak", options.tieStreak, MAX_TIE_STREAK, 1, MAX_TIE_STREAK);
  checkDurationMs("tieStreakMs", options.tieStreakMs, 250, 0);
  checkBoolean("excludeSuspect", options.excludeSuspect, false);
  checkBoolean("includeLocal", options.includeLocal, true);
  for (const name of ["handlers", "serverStreams", "clientStreams", "bidiStreams"] as const) {
    checkHandlers(name, options[name]);
  }
  if (typeof options.leaveOnSignals !== "boolean" && options.leaveOnSignals !== undefined) {
    checkPlainObject("leaveOnSignals", options.leaveOnSignals);
  }
  for (const name of ["membership", "server", "client"] as const) {
    if (options[name] !== undefined) checkPlainObject(name, options[name]);
  }
  return {
    bind,
    advertise,
    advertiseOption: "advertise",
    rpcPort,
    gossipPort,
    rpcAdvertise: options.rpcAdvertise,
    gossipAdvertise: options.gossipAdvertise,
    seeds,
    joinWaitMs,
    requireJoin,
    tcpLanes,
  };
}
