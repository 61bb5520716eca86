/**
 * Node: one call to run an RPC server and gossip membership together, with the registries and a
 * cluster client wired on top. The membership advertises the server's address as `rpcAddr`, so
 * other nodes can route calls here.
 *
 * @module
 */

import { RpcServer } from "../rpc/server.ts";
import type { DevCa, TlsConfig } from "../rpc/certs.ts";
import type {
  BidiStreamHandler,
  ClientStreamHandler,
  Handler,
  RpcServerOptions,
  ServerStreamHandler,
} from "../rpc/types.ts";
import { ClusterMembership, type ClusterMembershipOptions } from "../membership/membership.ts";
import type { Profile } from "../membership/config.ts";
import type { Keyring } from "../membership/keyring.ts";
import type { Tags } from "../membership/types.ts";
import type { StrategyName } from "../balance/balancer.ts";
import { NodeRegistry } from "../registry/node_registry.ts";
import { WorkerRegistry } from "../registry/worker_registry.ts";
import type { FilterInput } from "../registry/filter.ts";
import { ClusterClient, type ClusterClientOptions } from "./cluster_client.ts";
import { defaultLogger, type Logger } from "../logger.ts";
import { type NodeObserver, observe, type ObserveOptions } from "../observe/observer.ts";
import { logMembership } from "../observe/member_log.ts";

/** Options of {@linkcode Node.start}. Every field has a documented default. */
export interface NodeOptions {
  /** Unique node id. Default: a random UUID. */
  id?: string;
  /** Address both sockets bind to and advertise. Default `"127.0.0.1"`. */
  hostname?: string;
  /** RPC (QUIC/UDP) port; 0 picks one. Default 0. */
  rpcPort?: number;
  /** Gossip (UDP) port; 0 picks one. Default 0. */
  gossipPort?: number;
  /** Gossip addresses (`host:port`) of nodes to join; empty starts a new cluster. Default `[]`. */
  seeds?: readonly string[];
  /** This node's tags, e.g. `{role: "worker", zone: "eu-1"}`. Default `{}`. */
  tags?: Tags;
  /** Membership timing profile. Default `"LAN"`; `"LOCAL"` for tests and demos. */
  profile?: Profile;
  /** Cluster label: nodes with another label ignore this one's gossip. */
  label?: string;
  /** Gossip encryption keys. Default: none (plaintext gossip). */
  keyring?: Keyring;
  /** Cluster secret for RPC connections (server requires it, client proves it). */
  secret?: string | Uint8Array;
  /** Development CA for the RPC certificate and for trusting other nodes. */
  devCa?: DevCa;
  /** Production certificate of this node's RPC server. */
  tls?: TlsConfig;
  /** CA certificates to trust when calling other nodes (with `tls`). */
  caCerts?: string[];
  /** Balancing strategy of `node.client`. Default `"least_connections"`. */
  strategy?: StrategyName;
  /** Seed of random strategies (deterministic tests). */
  seed?: number;
  /** Leave suspect nodes out of selection. Default `false`. */
  excludeSuspect?: boolean;
  /** Whether this node may select itself. Default `true`. */
  includeLocal?: boolean;
  /** Filter of calls that give none. Default: every node serving RPC. */
  defaultFilter?: FilterInput;
  /** Handlers registered before the node becomes visible to others. */
  handlers?: Readonly<Record<string, Handler>>;
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

/**
 * A cluster node: RPC server + SWIM membership + registries + client.
 *
 * @example
 * ```ts ignore
 * import { Node } from "@rpcnet/cluster";
 *
 * const worker = await Node.start({
 *   profile: "LOCAL",
 *   tags: { role: "worker" },
 *   seeds: ["127.0.0.1:7946"],
 *   handlers: { compute: (req) => (req as number) * 2 },
 * });
 * const doubled = await worker.client.callWorker("compute", 21, { filter: "role=worker" });
 * await worker.leave();
 * ```
 */
export class Node {
  /** The RPC server (register handlers on it, or use {@linkcode Node.register}). */
  readonly server: RpcServer;
  /** Gossip membership. */
  readonly membership: ClusterMembership;
  /** Every node with state, phi and tags. */
  readonly nodes: NodeRegistry;
  /** Tag-filtered, balanced selection of workers. */
  readonly registry: WorkerRegistry;
  /** Load-balanced calls to other nodes. */
  readonly client: ClusterClient;
  /** The HTTP observer, when started with the `http` option. */
  observer: NodeObserver | undefined;
  #stopped = false;
  #stopLog: (() => void) | undefined;

  private constructor(
    server: RpcServer,
    membership: ClusterMembership,
    registry: WorkerRegistry,
    client: ClusterClient,
  ) {
    this.server = server;
    this.membership = membership;
    this.nodes = new NodeRegistry(membership);
    this.registry = registry;
    this.client = client;
  }

  /**
   * Starts the RPC server, then membership advertising the server's address, then joins seeds.
   *
   * @returns the running node
   * @throws {RpcError} `unavailable` when no seed answered within the profile's
   *   `bootstrapTimeoutMs` (everything started is stopped again); `invalid_argument` for bad options
   */
  static async start(options: NodeOptions = {}): Promise<Node> {
    const logger = options.logger ?? defaultLogger();
    const hostname = options.hostname ?? "127.0.0.1";
    const server = new RpcServer({
      ...options.server,
      hostname,
      port: options.rpcPort ?? 0,
      tls: options.tls,
      devCa: options.devCa,
      secret: options.secret,
      logger: options.server?.logger ?? logger,
    });
    for (const [method, handler] of Object.entries(options.handlers ?? {})) {
      server.register(method, handler);
    }
    await server.start();
    const rpcAddr = `${
      server.addr.hostname.includes(":") ? `[${server.addr.hostname}]` : server.addr.hostname
    }:${server.addr.port}`;
    let membership: ClusterMembership | undefined;
    let registry: WorkerRegistry | undefined;
    let client: ClusterClient | undefined;
    let stopLog: (() => void) | undefined;
    try {
      membership = new ClusterMembership({
        ...options.membership,
        id: options.id,
        bindHost: hostname,
        bindPort: options.gossipPort ?? 0,
        rpcAddr,
        tags: options.tags ?? {},
        profile: options.profile,
        label: options.label,
        keyring: options.keyring,
      });
      await membership.start();
      registry = new WorkerRegistry(membership, {
        strategy: options.strategy,
        seed: options.seed,
        excludeSuspect: options.excludeSuspect,
        includeLocal: options.includeLocal,
        defaultFilter: options.defaultFilter,
      });
      client = new ClusterClient(registry, {
        ...options.client,
        devCa: options.client?.devCa ?? options.devCa,
        caCerts: options.client?.caCerts ?? options.caCerts,
        secret: options.client?.secret ?? options.secret,
      });
      const seeds = [...(options.seeds ?? [])];
      stopLog = logMembership(membership, logger);
      if (seeds.length > 0) await membership.join(seeds);
      const node = new Node(server, membership, registry, client);
      node.#stopLog = stopLog;
      if (options.http) node.observer = observe(node, options.http);
      return node;
    } catch (e) {
      stopLog?.();
      logger.error("node start failed", { error: (e as Error)?.message ?? String(e) });
      await client?.close();
      registry?.close();
      await membership?.shutdown().catch(() => {});
      await server.close().catch(() => {});
      throw e;
    }
  }

  /** This node's id. */
  get id(): string {
    return this.membership.localId;
  }

  /** The RPC address other nodes call, `host:port`. */
  get rpcAddr(): string {
    return this.membership.localMember().rpcAddr;
  }

  /** The gossip address other nodes use as a seed, `host:port`. */
  get gossipAddr(): string {
    return this.membership.localAddr;
  }

  /** Registers a unary handler (callable while running). */
  register(method: string, handler: Handler): this {
    this.server.register(method, handler);
    return this;
  }

  /** Registers a server-streaming handler. */
  registerServerStream(method: string, handler: ServerStreamHandler): this {
    this.server.registerServerStream(method, handler);
    return this;
  }

  /** Registers a client-streaming handler. */
  registerClientStream(method: string, handler: ClientStreamHandler): this {
    this.server.registerClientStream(method, handler);
    return this;
  }

  /** Registers a bidirectional-streaming handler. */
  registerBidiStream(method: string, handler: BidiStreamHandler): this {
    this.server.registerBidiStream(method, handler);
    return this;
  }

  /** Replaces this node's tags; the change gossips to every node (NodeUpdated). */
  setTags(tags: Tags): void {
    this.membership.setTags(tags);
  }

  /**
   * Leaves gracefully: others see NodeLeft and stop routing here, then in-flight calls drain
   * and everything closes.
   */
  async leave(timeoutMs?: number): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      await this.membership.leave(timeoutMs);
    } finally {
      await this.#closeRest();
    }
  }

  /** Stops abruptly (no leave message): others detect a failure. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      await this.membership.shutdown();
    } finally {
      await this.#closeRest();
    }
  }

  async #closeRest(): Promise<void> {
    await this.client.close();
    this.registry.close();
    await this.server.close();
    this.#stopLog?.();
    await this.observer?.close();
  }
}
