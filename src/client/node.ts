/**
 * Node: one call to run an RPC server and gossip membership together, with the registries and a
 * cluster client wired on top. The membership advertises the server's address as `rpcAddr`, so
 * other nodes can route calls here.
 *
 * @module
 */

import { RpcServer } from "../rpc/server.ts";
import { defaultDevCa, devCertificateNames, issueDevCertificate } from "../rpc/certs.ts";
import type {
  BidiStreamHandler,
  ClientStreamHandler,
  Handler,
  ServerStreamHandler,
} from "../rpc/types.ts";
import { ClusterMembership } from "../membership/membership.ts";
import { UdpTransport } from "../membership/udp_transport.ts";
import type { Tags } from "../membership/types.ts";
import { NodeRegistry } from "../registry/node_registry.ts";
import { WorkerRegistry } from "../registry/worker_registry.ts";
import { formatHostPort, parseHostPort } from "../addr.ts";
import { advertiseHostFor } from "../advertise.ts";
import { RpcError } from "../errors.ts";
import { requireNetApis } from "../net_api.ts";
import { ClusterClient } from "./cluster_client.ts";
import { serveAdmin } from "./admin.ts";
import { leaveOnSignals } from "./lifecycle.ts";
import { type NodeOptions, resolveNodeOptions } from "./node_options.ts";

export type { NodeOptions } from "./node_options.ts";
import { defaultLogger } from "../logger.ts";
import { type NodeObserver, observe } from "../observe/observer.ts";
import { logMembership } from "../observe/member_log.ts";

/**
 * A cluster node: RPC server + SWIM membership + registries + client.
 *
 * @example
 * ```ts
 * import { Node } from "@rpcnet/cluster";
 *
 * const worker = await Node.start({
 *   profile: "LOCAL",
 *   tags: { role: "worker" },
 *   seeds: ["127.0.0.1:7946"],
 *   handlers: { compute: (req) => (req as number) * 2 },
 * });
 * const doubled = await worker.client.callWorker("compute", 21, { filter: "role=worker" });
 * console.log(doubled); // 42
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
  #joined = false;
  #readyWaiters = new Set<() => void>();
  #removeSignalListeners: (() => void) | undefined;

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
   * Starts the RPC server (handlers registered first), then membership advertising the server's
   * address, then joins the seeds. See {@linkcode NodeOptions} for bind and advertise addresses.
   *
   * @returns the running node
   * @throws {RpcError} `invalid_argument` for a bad option (naming it), an advertised wildcard, or
   *   a wildcard bind with no routable interface address; `failed_precondition` when Deno runs
   *   without `--unstable-net`; `unauthenticated`/`invalid_argument` when a seed refuses this
   *   node for good (wrong gossip key or label, not this protocol); `unavailable` when a port
   *   cannot be bound, or with `requireJoin` when no seed answered within `joinWaitMs` (everything
   *   started is stopped again). Without `requireJoin`, seeds that are not up yet are retried in
   *   the background and `ready` turns true once one answers.
   */
  static async start(options: NodeOptions = {}): Promise<Node> {
    const logger = options.logger ?? defaultLogger();
    requireNetApis("Node.start");
    const o = resolveNodeOptions(options);
    const advertise = o.advertise ?? advertiseHostFor(o.bind, o.advertiseOption);
    const rpcAdvertiseHost = o.rpcAdvertise === undefined
      ? advertise
      : o.rpcAdvertise.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    const tls = options.tls ?? await issueDevCertificate(
      options.devCa ?? await defaultDevCa(),
      devCertificateNames([rpcAdvertiseHost, advertise, o.bind, options.serverName]),
    );
    const server = new RpcServer({
      ...options.server,
      hostname: o.bind,
      port: o.rpcPort,
      tls,
      secret: options.secret,
      logger: options.server?.logger ?? logger,
      tcpLanes: options.server?.tcpLanes ?? o.tcpLanes,
    });
    for (const [method, h] of Object.entries(options.handlers ?? {})) server.register(method, h);
    for (const [method, h] of Object.entries(options.serverStreams ?? {})) {
      server.registerServerStream(method, h);
    }
    for (const [method, h] of Object.entries(options.clientStreams ?? {})) {
      server.registerClientStream(method, h);
    }
    for (const [method, h] of Object.entries(options.bidiStreams ?? {})) {
      server.registerBidiStream(method, h);
    }
    await server.start();
    const rpcAddr = o.rpcAdvertise ?? formatHostPort(advertise, server.addr.port);
    let transport: UdpTransport | undefined;
    let membership: ClusterMembership | undefined;
    let registry: WorkerRegistry | undefined;
    let client: ClusterClient | undefined;
    let stopLog: (() => void) | undefined;
    try {
      // Bound here (not by the membership) so the advertised gossip address can carry the port
      // the kernel picked, under the advertised host rather than a wildcard.
      if (options.membership?.transport === undefined) {
        transport = await UdpTransport.bind({ hostname: o.bind, port: o.gossipPort });
      }
      const gossipAdvertise = o.gossipAdvertise ??
        options.membership?.advertiseAddr ??
        (transport
          ? formatHostPort(advertise, parseHostPort(transport.localAddr)!.port)
          : undefined);
      membership = new ClusterMembership({
        ...options.membership,
        transport: options.membership?.transport ?? transport,
        advertiseAddr: gossipAdvertise,
        id: options.id,
        bindHost: o.bind,
        bindPort: o.gossipPort,
        rpcAddr,
        tags: options.tags ?? {},
        profile: options.profile,
        label: options.label,
        keyring: options.keyring,
        seeds: o.seeds,
      });
      await membership.start();
      registry = new WorkerRegistry(membership, {
        strategy: options.strategy,
        seed: options.seed,
        tieStreak: options.tieStreak,
        tieStreakMs: options.tieStreakMs,
        excludeSuspect: options.excludeSuspect,
        includeLocal: options.includeLocal,
        defaultFilter: options.defaultFilter,
      });
      client = new ClusterClient(registry, {
        ...options.client,
        devCa: options.client?.devCa ?? options.devCa,
        caCerts: options.client?.caCerts ?? options.caCerts,
        secret: options.client?.secret ?? options.secret,
        serverName: options.client?.serverName ?? options.serverName,
        tcpLanes: options.client?.tcpLanes ?? o.tcpLanes,
      });
      stopLog = logMembership(membership, logger);
      await waitForFirstJoin(membership, o.joinWaitMs ?? membership.config.bootstrapTimeoutMs, o);
      const node = new Node(server, membership, registry, client);
      serveAdmin(node); // the read-only $cluster.* methods tools look through (admin.ts)
      node.#stopLog = stopLog;
      if (options.http) node.observer = observe(node, options.http);
      if (membership.joined) node.#setJoined();
      else membership.whenJoined().then(() => node.#setJoined(), () => {});
      if (options.leaveOnSignals) {
        node.#removeSignalListeners = leaveOnSignals(
          node,
          options.leaveOnSignals === true ? {} : options.leaveOnSignals,
        );
      }
      return node;
    } catch (e) {
      stopLog?.();
      logger.error("node start failed", { error: (e as Error)?.message ?? String(e) });
      await client?.close();
      registry?.close();
      if (membership) await membership.shutdown().catch(() => {});
      else await transport?.close().catch(() => {});
      await server.close().catch(() => {});
      throw e;
    }
  }

  #setJoined(): void {
    this.#joined = true;
    for (const wake of this.#readyWaiters) wake();
    this.#readyWaiters.clear();
  }

  /**
   * Whether this node is ready for traffic: joined (a seed answered, or it started a new
   * cluster) and serving RPC, and not leaving or stopped. For readiness probes.
   */
  get ready(): boolean {
    return this.#joined && !this.#stopped && this.membership.running;
  }

  /**
   * Resolves once the node is {@linkcode Node.ready}.
   *
   * @throws {RpcError} `deadline_exceeded` after `timeoutMs`; `unavailable` when the node stops
   *   first
   */
  whenReady(timeoutMs = 30_000): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.#stopped) return Promise.reject(new RpcError("unavailable", "node is stopped"));
    return new Promise((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        this.#readyWaiters.delete(wake);
        if (this.ready) resolve();
        else reject(new RpcError("unavailable", "node stopped before it was ready"));
      };
      const timer = setTimeout(() => {
        this.#readyWaiters.delete(wake);
        reject(new RpcError("deadline_exceeded", `node not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#readyWaiters.add(wake);
    });
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
    this.#stopping();
    try {
      await this.membership.leave(timeoutMs);
    } finally {
      await this.#closeRest();
    }
  }

  /** Stops abruptly (no leave message): others detect a failure. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopping();
    try {
      await this.membership.shutdown();
    } finally {
      await this.#closeRest();
    }
  }

  #stopping(): void {
    this.#stopped = true;
    this.#removeSignalListeners?.();
    for (const wake of [...this.#readyWaiters]) wake();
  }

  async #closeRest(): Promise<void> {
    await this.client.close();
    this.registry.close();
    await this.server.close();
    this.#stopLog?.();
    await this.observer?.close();
  }
}

/**
 * Waits up to `waitMs` for the membership's background join. A refusal that retrying cannot fix
 * (wrong gossip key or label, a seed port that is not this protocol) rejects at once; running out
 * of time rejects only with `requireJoin`, otherwise the join goes on in the background.
 */
async function waitForFirstJoin(
  membership: ClusterMembership,
  waitMs: number,
  o: { seeds: readonly string[]; requireJoin: boolean },
): Promise<void> {
  if (membership.joined || waitMs <= 0 && !o.requireJoin) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<false>((r) => (timer = setTimeout(() => r(false), waitMs)));
  try {
    const joined = await Promise.race([membership.whenJoined().then(() => true), timedOut]);
    if (!joined && o.requireJoin) {
      throw new RpcError(
        "unavailable",
        `no seed of ${JSON.stringify(o.seeds)} answered within ${waitMs} ms (joinWaitMs); ` +
          `check that a seed is running and reachable on its gossip port (UDP and TCP)`,
      );
    }
  } finally {
    clearTimeout(timer);
  }
}
