/**
 * `RpcServer`: accepts QUIC connections and serves registered handlers.
 *
 * @module
 */

import { importSecret } from "./auth.ts";
import { defaultDevCa, devCertificateNames, issueDevCertificate } from "./certs.ts";
import { requireNetApis } from "../net_api.ts";
import { ByteBudget } from "./budget.ts";
import { PayloadCodec } from "./codec.ts";
import { PayloadLimits } from "./payload_limits.ts";
import { type HandlerEntry, RateLimitedLog, type ServerShared } from "./context.ts";
import { RpcError } from "../errors.ts";
import {
  checkBoolean,
  checkDurationMs,
  checkInt,
  checkPlainObject,
  checkString,
} from "../options.ts";
import { checkPems, checkSecret } from "./rpc_options.ts";
import { encodeUtf8, KIND, RPC_ALPN, RPC_CLOSE_CODES } from "./frames.ts";
import {
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_BUFFERED_BYTES_TOTAL,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_LANES,
  DEFAULT_MAX_STREAMS,
  MAX_FRAME_LIMIT,
} from "./limits.ts";
import { ServerConnection } from "./server_conn.ts";
import { TcpLaneListener, TcpLaneTokens } from "./tcp_lanes.ts";
import type { TlsConfig } from "./certs.ts";
import { type CallObserver, observeSingle, observeStream } from "./call_observer.ts";
import { composeServerInterceptors, type ServerInterceptor } from "./intercept.ts";
import { deadlines } from "./deadlines.ts";
import { silentLogger } from "../logger.ts";
import type {
  BidiStreamHandler,
  ClientStreamHandler,
  FallbackHandler,
  FallbackOptions,
  Handler,
  RegisterOptions,
  RpcServerOptions,
  RpcServerStats,
  ServerStreamHandler,
} from "./types.ts";

/** Checks a method name: 1..255 UTF-8 bytes. */
export function checkMethod(method: string): void {
  if (typeof method !== "string" || method.length === 0 || encodeUtf8(method).length > 255) {
    throw new RpcError("invalid_argument", `method name must be 1..255 bytes, got '${method}'`);
  }
}

/**
 * Method names starting with this are reserved for the read-only admin service every `Node`
 * serves (`$cluster.members`, `$cluster.stats`, …); user handlers cannot take them.
 */
export const RESERVED_METHOD_PREFIX = "$cluster.";

let addReserved: (server: RpcServer, method: string, kind: number, fn: HandlerEntry["fn"]) => void;
let setObserver: (server: RpcServer, observer: CallObserver) => void;

/**
 * Registers a handler under a reserved (`$cluster.`) name, for the admin service; not part of
 * the public API. Reserved handlers are not observed.
 */
export function registerReserved(
  server: RpcServer,
  method: string,
  kind: "unary" | "serverStream",
  fn: Handler | ServerStreamHandler,
): void {
  addReserved(server, method, kind === "unary" ? KIND.UNARY : KIND.SERVER, fn);
}

/**
 * Reports every call of the server's user handlers (registered before or after) to `observer`;
 * for the admin service's call meter and `observe()`'s streaming-call counts, not part of the
 * public API. Observers are added, never removed; each call is told to all of them in order.
 */
export function observeServerCalls(server: RpcServer, observer: CallObserver): void {
  setObserver(server, observer);
}

function observed(
  method: string,
  entry: HandlerEntry,
  observer: CallObserver,
): HandlerEntry["fn"] {
  const fn = entry.fn as (...args: unknown[]) => unknown;
  return (entry.kind === KIND.SERVER || entry.kind === KIND.BIDI)
    ? observeStream(method, fn as (...args: unknown[]) => AsyncIterable<unknown>, observer)
    : observeSingle(method, fn, observer, entry.kind !== KIND.UNARY);
}

/**
 * Serves RPC handlers over QUIC. Unary calls ride a few long-lived "lane" streams per
 * connection; each streaming call gets its own stream. With `tcpLanes`, a client may move its
 * small unary calls to a TLS-over-TCP lane bound to its QUIC connection.
 *
 * @example
 * ```ts
 * import { RpcClient, RpcServer } from "@rpcnet/cluster";
 *
 * const server = new RpcServer({ port: 0 })
 *   .register("add", (req) => (req as { a: number; b: number }).a + (req as { a: number; b: number }).b);
 * await server.start();
 * const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * console.log(await client.call("add", { a: 2, b: 3 })); // 5
 * await client.close();
 * await server.close();
 * ```
 */
export class RpcServer {
  #opts: RpcServerOptions;
  #shared: ServerShared;
  #drainTimeoutMs: number;
  #maxStreams: number;
  #maxConnections: number;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #endpoint: Deno.QuicEndpoint | undefined;
  #listener: Deno.QuicListener | undefined;
  #tcpLanes: boolean;
  #tcpListener: TcpLaneListener | undefined;
  #acceptLoop: Promise<void> | undefined;
  #conns = new Set<ServerConnection>();
  #interceptors: ServerInterceptor[] = [];
  #addr: { hostname: string; port: number } | undefined;
  #state: "new" | "starting" | "running" | "closing" | "closed" = "new";
  #observer: CallObserver | undefined;
  #observers: CallObserver[] = [];
  #reserved = new Set<string>();

  static {
    addReserved = (server, method, kind, fn) => {
      if (!method.startsWith(RESERVED_METHOD_PREFIX)) {
        throw new RpcError("internal", `'${method}' is not a reserved method name`);
      }
      server.#reserved.add(method);
      server.#add(method, kind, fn, false, true);
    };
    setObserver = (server, observer) => {
      server.#observers.push(observer);
      if (server.#observer) return; // the handlers already report to the fan-out below
      const observers = server.#observers;
      // One wrapper per handler reports to every observer, those added later too.
      observer = server.#observer = (m, ms, e, s) => {
        for (let i = 0; i < observers.length; i++) observers[i](m, ms, e, s);
      };
      for (const [method, entry] of server.#shared.handlers) {
        if (!server.#reserved.has(method)) entry.fn = observed(method, entry, observer);
      }
      const fb = server.#shared.fallback;
      if (fb) fb.fn = observeSingle(undefined, fb.fn, observer);
    };
  }

  /**
   * Creates a server; nothing is bound until `start()`.
   *
   * @param options listen address, TLS, secret and limits (all optional)
   * @throws {RpcError} `invalid_argument` for out-of-range options
   */
  constructor(options: RpcServerOptions = {}) {
    checkPlainObject("RpcServer options", options);
    this.#opts = options;
    checkString("hostname", options.hostname, undefined);
    checkInt("port", options.port, 0, 0, 65535);
    checkSecret("secret", options.secret);
    checkPems("tls", options.tls, ["certPem", "keyPem"]);
    checkPems("devCa", options.devCa, ["certPem", "keyPem"]);
    this.#tcpLanes = checkBoolean("tcpLanes", options.tcpLanes, false);
    this.#drainTimeoutMs = checkDurationMs("drainTimeoutMs", options.drainTimeoutMs, 5000);
    this.#maxStreams = checkInt(
      "maxStreamsPerConnection",
      options.maxStreamsPerConnection,
      DEFAULT_MAX_STREAMS,
      1,
      1 << 20,
    );
    this.#maxConnections = checkInt(
      "maxConnections",
      options.maxConnections,
      DEFAULT_MAX_CONNECTIONS,
      1,
      1 << 24,
    );
    const maxFrameBytes = checkInt(
      "maxFrameBytes",
      options.maxFrameBytes,
      DEFAULT_MAX_FRAME_BYTES,
      64,
      MAX_FRAME_LIMIT,
    );
    this.#shared = {
      handlers: new Map(),
      fallback: undefined,
      codec: new PayloadCodec(new PayloadLimits(options)),
      maxFrameBytes,
      // Room for at least one largest frame, so that every frame can be received alone.
      maxBufferedBytes: checkInt(
        "maxBufferedBytesPerConnection",
        options.maxBufferedBytesPerConnection,
        Math.max(DEFAULT_MAX_BUFFERED_BYTES, maxFrameBytes + 4),
        maxFrameBytes + 4,
        Number.MAX_SAFE_INTEGER,
      ),
      bufferBudget: new ByteBudget(
        checkInt(
          "maxBufferedBytes",
          options.maxBufferedBytes,
          Math.max(DEFAULT_MAX_BUFFERED_BYTES_TOTAL, maxFrameBytes + 4),
          maxFrameBytes + 4,
          Number.MAX_SAFE_INTEGER,
        ),
      ),
      maxLanes: checkInt(
        "maxLanesPerConnection",
        options.maxLanesPerConnection,
        DEFAULT_MAX_LANES,
        1,
        1 << 20,
      ),
      frameTimeoutMs: checkDurationMs(
        "frameTimeoutMs",
        options.frameTimeoutMs,
        DEFAULT_FRAME_TIMEOUT_MS,
        1,
      ),
      maxCalls: checkInt(
        "maxConcurrentCallsPerConnection",
        options.maxConcurrentCallsPerConnection,
        16384,
        1,
        1 << 30,
      ),
      maxConnectionAgeMs: checkDurationMs("maxConnectionAgeMs", options.maxConnectionAgeMs, 0),
      drainTimeoutMs: 0,
      authTimeoutMs: checkDurationMs("authTimeoutMs", options.authTimeoutMs, 10_000, 1),
      key: undefined,
      tcpLaneTokens: this.#tcpLanes ? new TcpLaneTokens() : undefined,
      stats: {
        connections: 0,
        connectionsTotal: 0,
        activeCalls: 0,
        callsTotal: 0,
        protocolErrors: 0,
        authFailures: 0,
        rejectedCalls: 0,
        invalidPayloads: 0,
        refusedConnections: 0,
        preAuthViolations: 0,
        refusedLanes: 0,
        bufferLimitRejects: 0,
        frameTimeouts: 0,
        tcpLanesOpened: 0,
        rejectedTcpLanes: 0,
      },
      draining: false,
      onCallDone: () => {},
      intercept: undefined,
      log: new RateLimitedLog(options.logger ?? silentLogger),
    };
    for (const i of options.interceptors ?? []) this.use(i);
    this.#shared.drainTimeoutMs = this.#drainTimeoutMs;
  }

  /**
   * Registers a unary handler for `method`. With `{ encoded: true }` the request arrives as an
   * {@linkcode EncodedPayload} (wire bytes, not decoded), as with a fallback.
   */
  register(method: string, handler: Handler, options: RegisterOptions = {}): this {
    return this.#add(method, KIND.UNARY, handler, checkBoolean("encoded", options?.encoded, false));
  }

  /** Registers a server-streaming handler: one request, an async iterable of responses. */
  registerServerStream(method: string, handler: ServerStreamHandler): this {
    return this.#add(method, KIND.SERVER, handler);
  }

  /** Registers a client-streaming handler: an async iterable of requests, one response. */
  registerClientStream(method: string, handler: ClientStreamHandler): this {
    return this.#add(method, KIND.CLIENT, handler);
  }

  /** Registers a bidirectional-streaming handler. */
  registerBidiStream(method: string, handler: BidiStreamHandler): this {
    return this.#add(method, KIND.BIDI, handler);
  }

  /**
   * Registers the unary catch-all: a unary call to a method with no registered handler goes to
   * `handler(method, request, ctx)` instead of failing with `not_found`. Without a fallback such
   * calls get `not_found`, as do streaming calls to unknown methods and calls whose method is
   * registered with another kind. The fallback may itself throw `RpcError("not_found")` for
   * methods it does not serve.
   *
   * With `{ encoded: true }` the request arrives as an {@linkcode EncodedPayload} (its wire
   * bytes, not decoded) and the handler may return one, so a proxy forwards calls without
   * decoding or re-encoding their payloads.
   *
   * @example
   * ```ts
   * import { RpcError, RpcServer } from "@rpcnet/cluster";
   *
   * const server = new RpcServer().registerFallback((method, request) => {
   *   if (!method.startsWith("v1.")) throw new RpcError("not_found", `no method '${method}'`);
   *   return { method, request };
   * });
   * ```
   *
   * @throws {RpcError} `invalid_argument` when a fallback is already registered
   */
  registerFallback(handler: FallbackHandler, options: FallbackOptions = {}): this {
    if (typeof handler !== "function") {
      throw new RpcError("invalid_argument", "fallback handler must be a function");
    }
    if (this.#shared.fallback) {
      throw new RpcError("invalid_argument", "a fallback handler is already registered");
    }
    const encoded = checkBoolean("encoded", options?.encoded, false);
    const fn = this.#observer ? observeSingle(undefined, handler, this.#observer) : handler;
    this.#shared.fallback = { fn, encoded };
    return this;
  }

  #add(
    method: string,
    kind: number,
    fn: HandlerEntry["fn"],
    encoded = false,
    reserved = false,
  ): this {
    checkMethod(method);
    if (!reserved && method.startsWith(RESERVED_METHOD_PREFIX)) {
      throw new RpcError(
        "invalid_argument",
        `method '${method}' is reserved: names starting with '${RESERVED_METHOD_PREFIX}' belong to the admin service every Node serves; choose another name`,
      );
    }
    if (typeof fn !== "function") {
      throw new RpcError("invalid_argument", `handler for '${method}' must be a function`);
    }
    if (this.#shared.handlers.has(method)) {
      throw new RpcError("invalid_argument", `method '${method}' is already registered`);
    }
    const entry: HandlerEntry = { kind, fn, encoded };
    if (this.#observer && !reserved) entry.fn = observed(method, entry, this.#observer);
    this.#shared.handlers.set(method, entry);
    return this;
  }

  /**
   * Adds a unary-call interceptor inside those already installed (callable while running; calls
   * already started keep the chain they started with).
   *
   * @throws {RpcError} `invalid_argument` when `interceptor` is not a function
   */
  use(interceptor: ServerInterceptor): this {
    if (typeof interceptor !== "function") {
      throw new RpcError("invalid_argument", "interceptors: each interceptor must be a function");
    }
    this.#interceptors.push(interceptor);
    this.#shared.intercept = composeServerInterceptors(this.#interceptors);
    return this;
  }

  /** Whether the server is running and accepting calls (false before start and once draining). */
  get accepting(): boolean {
    return this.#state === "running" && !this.#shared.draining;
  }

  /** The bound address; valid after `start()`. */
  get addr(): { hostname: string; port: number } {
    if (!this.#addr) throw new RpcError("unavailable", "RpcServer.addr read before start()");
    return this.#addr;
  }

  /** A snapshot of the server's counters. */
  stats(): RpcServerStats {
    return { ...this.#shared.stats };
  }

  /**
   * Binds the endpoint (and with `tcpLanes` the TCP port of the same number) and starts
   * accepting connections.
   *
   * @throws {RpcError} `unavailable` when the address cannot be bound (with `tcpLanes`, also
   * when the TCP port is taken: the message names `tcpLanes`); `invalid_argument` for a bad
   * secret or unusable TLS material; `failed_precondition` without `--unstable-net`
   */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new RpcError("invalid_argument", "RpcServer already started");
    requireNetApis("RpcServer.start", ["quic"]);
    this.#state = "starting";
    const o = this.#opts;
    const hostname = o.hostname ?? "127.0.0.1";
    const tls = o.tls ??
      await issueDevCertificate(o.devCa ?? await defaultDevCa(), devCertificateNames([hostname]));
    if (o.secret !== undefined) this.#shared.key = await importSecret(o.secret);
    let endpoint: Deno.QuicEndpoint;
    let tcp: Deno.TlsListener | undefined;
    // With TCP lanes the TCP port must have the QUIC port's number: with port 0 a pair whose TCP
    // half is taken is dropped for a fresh one (a few times).
    for (let attempt = 1;; attempt++) {
      endpoint = this.#listen(hostname, o.port ?? 0, tls);
      if (!this.#tcpLanes) break;
      try {
        tcp = Deno.listenTls({
          hostname,
          port: endpoint.addr.port,
          cert: tls.certPem,
          key: tls.keyPem,
          alpnProtocols: [RPC_ALPN],
        });
        break;
      } catch (e) {
        endpoint.close();
        if ((o.port ?? 0) === 0 && e instanceof Deno.errors.AddrInUse && attempt < 8) continue;
        this.#state = "closed";
        throw new RpcError(
          "unavailable",
          `tcpLanes: cannot listen on TCP ${hostname}:${endpoint.addr.port} (the TCP port must ` +
            `have the QUIC endpoint's port number): ${(e as Error).message}`,
          { cause: e },
        );
      }
    }
    const a = endpoint.addr;
    this.#addr = { hostname: a.hostname, port: a.port };
    this.#state = "running";
    this.#acceptLoop = this.#accept(this.#listener!);
    if (tcp) {
      this.#tcpListener = new TcpLaneListener(
        this.#shared,
        tcp,
        this.#shared.tcpLaneTokens!,
        this.#maxConnections,
      );
    }
    // Stalled frames are found by a sweep rather than a timer per partial frame.
    const frameTimeoutMs = this.#shared.frameTimeoutMs;
    const sweeper = this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const c of this.#conns) c.sweep(now, frameTimeoutMs);
    }, Math.min(1000, Math.max(10, frameTimeoutMs >> 2)));
    Deno.unrefTimer(sweeper);
  }

  // Binds the QUIC endpoint and listens on it (sets #endpoint and #listener).
  #listen(hostname: string, port: number, tls: TlsConfig): Deno.QuicEndpoint {
    let endpoint: Deno.QuicEndpoint;
    try {
      endpoint = this.#endpoint = new Deno.QuicEndpoint({ hostname, port });
    } catch (e) {
      this.#state = "closed";
      // Deno releases a closed QuicEndpoint's UDP port only when the object is garbage-collected,
      // so rebinding a port just closed in this same process fails for a while.
      throw new RpcError(
        "unavailable",
        `cannot bind QUIC endpoint on ${hostname}:${port}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    try {
      this.#listener = endpoint.listen({
        alpnProtocols: [RPC_ALPN],
        cert: tls.certPem,
        key: tls.keyPem,
        maxConcurrentBidirectionalStreams: this.#maxStreams,
        // Nothing uses unidirectional streams; unread, each could buffer a receive window.
        maxConcurrentUnidirectionalStreams: 0,
      });
    } catch (e) {
      endpoint.close();
      this.#state = "closed";
      throw new RpcError("invalid_argument", `cannot listen: ${(e as Error).message}`, {
        cause: e,
      });
    }
    return endpoint;
  }

  async #accept(listener: Deno.QuicListener): Promise<void> {
    try {
      for await (const incoming of listener) {
        if (this.#shared.draining) {
          incoming.refuse();
          continue;
        }
        if (this.#conns.size >= this.#maxConnections) {
          this.#shared.stats.refusedConnections++;
          incoming.refuse();
          continue;
        }
        let conn: Deno.QuicConn;
        try {
          // 0.5-RTT: the challenge leaves before the handshake completes, and a warm client's
          // 0-RTT lanes are accepted; nothing is served before the secret is proven.
          conn = incoming.accept({
            zeroRtt: true,
            maxConcurrentBidirectionalStreams: this.#maxStreams,
            maxConcurrentUnidirectionalStreams: 0,
          });
        } catch {
          continue;
        }
        const sc = new ServerConnection(this.#shared, conn);
        this.#conns.add(sc);
        this.#shared.stats.connections++;
        this.#shared.stats.connectionsTotal++;
        sc.closed.then(() => {
          this.#conns.delete(sc);
          this.#shared.stats.connections--;
        });
      }
    } catch { /* listener stopped or endpoint closed */ }
  }

  /**
   * Graceful shutdown: stops accepting connections and calls (new calls get `unavailable`),
   * waits up to `drainTimeoutMs` for running calls, then closes every connection and the
   * endpoint.
   */
  async close(): Promise<void> {
    if (this.#state === "closing" || this.#state === "closed") return;
    if (this.#state !== "running") {
      this.#state = "closed";
      return;
    }
    this.#state = "closing";
    this.#shared.draining = true;
    clearInterval(this.#sweeper);
    try {
      this.#listener?.stop();
    } catch { /* already stopped */ }
    const tcpClosed = this.#tcpListener?.close();
    for (const c of this.#conns) c.goAway();
    // Clients close a connection themselves once its calls are answered (closing from this
    // side could discard responses still in flight); force it after drainTimeoutMs.
    const deadline = Date.now() + this.#drainTimeoutMs;
    while (
      (this.#shared.stats.activeCalls > 0 || this.#conns.size > 0) && Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const c of [...this.#conns]) c.close(RPC_CLOSE_CODES.GOING_AWAY, "server closed");
    await Promise.all([...this.#conns].map((c) => c.closed));
    try {
      this.#endpoint?.close({ closeCode: RPC_CLOSE_CODES.GOING_AWAY, reason: "server closed" });
    } catch { /* already closed */ }
    await this.#acceptLoop;
    await tcpClosed;
    deadlines.releaseIdle();
    this.#state = "closed";
  }
}
