/**
 * `RpcServer`: accepts QUIC connections and serves registered handlers.
 *
 * @module
 */

import { importSecret } from "./auth.ts";
import { defaultDevCa, issueDevCertificate } from "./certs.ts";
import { PayloadCodec } from "./codec.ts";
import { type HandlerEntry, KIND, RateLimitedLog, type ServerShared } from "./context.ts";
import { RpcError } from "../errors.ts";
import { checkInt } from "../options.ts";
import { encodeUtf8, RPC_ALPN, RPC_CLOSE_CODES } from "./frames.ts";
import { ServerConnection } from "./server_conn.ts";
import { composeServerInterceptors, type ServerInterceptor } from "./intercept.ts";
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

/** Default largest frame: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
const MAX_FRAME_LIMIT = 0xffff_ffff - 16;

/** Checks a method name: 1..255 UTF-8 bytes. */
export function checkMethod(method: string): void {
  if (typeof method !== "string" || method.length === 0 || encodeUtf8(method).length > 255) {
    throw new RpcError("invalid_argument", `method name must be 1..255 bytes, got '${method}'`);
  }
}

/**
 * Serves RPC handlers over QUIC. Unary calls ride a few long-lived "lane" streams per
 * connection; each streaming call gets its own stream.
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
  #endpoint: Deno.QuicEndpoint | undefined;
  #listener: Deno.QuicListener | undefined;
  #acceptLoop: Promise<void> | undefined;
  #conns = new Set<ServerConnection>();
  #interceptors: ServerInterceptor[] = [];
  #addr: { hostname: string; port: number } | undefined;
  #state: "new" | "starting" | "running" | "closing" | "closed" = "new";

  /**
   * Creates a server; nothing is bound until `start()`.
   *
   * @param options listen address, TLS, secret and limits (all optional)
   * @throws {RpcError} `invalid_argument` for out-of-range options
   */
  constructor(options: RpcServerOptions = {}) {
    this.#opts = options;
    checkInt("port", options.port, 0, 0, 65535);
    this.#drainTimeoutMs = checkInt("drainTimeoutMs", options.drainTimeoutMs, 5000, 0, 3_600_000);
    this.#maxStreams = checkInt(
      "maxStreamsPerConnection",
      options.maxStreamsPerConnection,
      1024,
      1,
      1 << 20,
    );
    this.#shared = {
      handlers: new Map(),
      fallback: undefined,
      codec: new PayloadCodec(),
      maxFrameBytes: checkInt(
        "maxFrameBytes",
        options.maxFrameBytes,
        DEFAULT_MAX_FRAME_BYTES,
        64,
        MAX_FRAME_LIMIT,
      ),
      maxCalls: checkInt(
        "maxConcurrentCallsPerConnection",
        options.maxConcurrentCallsPerConnection,
        16384,
        1,
        1 << 30,
      ),
      maxConnectionAgeMs: checkInt(
        "maxConnectionAgeMs",
        options.maxConnectionAgeMs,
        0,
        0,
        2 ** 31 - 1,
      ),
      drainTimeoutMs: 0,
      authTimeoutMs: checkInt("authTimeoutMs", options.authTimeoutMs, 10_000, 1, 3_600_000),
      key: undefined,
      stats: {
        connections: 0,
        connectionsTotal: 0,
        activeCalls: 0,
        callsTotal: 0,
        protocolErrors: 0,
        authFailures: 0,
        rejectedCalls: 0,
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
    return this.#add(method, KIND.UNARY, handler, options.encoded ?? false);
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
    this.#shared.fallback = { fn: handler, encoded: options.encoded ?? false };
    return this;
  }

  #add(method: string, kind: number, fn: HandlerEntry["fn"], encoded = false): this {
    checkMethod(method);
    if (typeof fn !== "function") {
      throw new RpcError("invalid_argument", `handler for '${method}' must be a function`);
    }
    if (this.#shared.handlers.has(method)) {
      throw new RpcError("invalid_argument", `method '${method}' is already registered`);
    }
    this.#shared.handlers.set(method, { kind, fn, encoded });
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
   * Binds the endpoint and starts accepting connections.
   *
   * @throws {RpcError} `unavailable` when the address cannot be bound; `invalid_argument` for a
   * bad secret or unusable TLS material
   */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new RpcError("invalid_argument", "RpcServer already started");
    this.#state = "starting";
    const o = this.#opts;
    const tls = o.tls ?? await issueDevCertificate(o.devCa ?? await defaultDevCa());
    if (o.secret !== undefined) this.#shared.key = await importSecret(o.secret);
    const hostname = o.hostname ?? "127.0.0.1";
    try {
      this.#endpoint = new Deno.QuicEndpoint({ hostname, port: o.port ?? 0 });
    } catch (e) {
      this.#state = "closed";
      // Deno releases a closed QuicEndpoint's UDP port only when the object is garbage-collected,
      // so rebinding a port just closed in this same process fails for a while.
      throw new RpcError(
        "unavailable",
        `cannot bind QUIC endpoint on ${hostname}:${o.port ?? 0}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    try {
      this.#listener = this.#endpoint.listen({
        alpnProtocols: [RPC_ALPN],
        cert: tls.certPem,
        key: tls.keyPem,
        maxConcurrentBidirectionalStreams: this.#maxStreams,
      });
    } catch (e) {
      this.#endpoint.close();
      this.#state = "closed";
      throw new RpcError("invalid_argument", `cannot listen: ${(e as Error).message}`, {
        cause: e,
      });
    }
    const a = this.#endpoint.addr;
    this.#addr = { hostname: a.hostname, port: a.port };
    this.#state = "running";
    this.#acceptLoop = this.#accept(this.#listener);
  }

  async #accept(listener: Deno.QuicListener): Promise<void> {
    try {
      for await (const incoming of listener) {
        if (this.#shared.draining) {
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
    try {
      this.#listener?.stop();
    } catch { /* already stopped */ }
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
    this.#state = "closed";
  }
}
