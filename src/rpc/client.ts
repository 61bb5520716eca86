/**
 * `RpcClient`: calls an `RpcServer`, reconnecting after a lost connection.
 *
 * @module
 */

import { requireNetApis } from "../net_api.ts";
import { importSecret } from "./auth.ts";
import { defaultDevCa } from "./certs.ts";
import { ClientConnection, type ClientShared, type ConnectSettings } from "./client_conn.ts";
import { PayloadCodec } from "./codec.ts";
import { PayloadLimits } from "./payload_limits.ts";
import { RpcError } from "../errors.ts";
import {
  checkBoolean,
  checkDurationMs,
  checkInt,
  checkPlainObject,
  checkString,
  checkStringArray,
  invalidOption,
} from "../options.ts";
import { checkCallOptions, checkPems, checkSecret } from "./rpc_options.ts";
import { DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_LIMIT } from "./limits.ts";
import { deadlines } from "./deadlines.ts";
import { bidiStreamCall, clientStreamCall, serverStreamCall } from "./streaming.ts";
import type { CallOptions, RpcClientOptions, RpcClientStats } from "./types.ts";

// After a failed connect, calls fail fast for this long instead of each trying again.
const RECONNECT_BACKOFF_MS = 100;

/**
 * A connection to one `RpcServer`. Unary calls are multiplexed over a few long-lived lane
 * streams (the small ones over a TLS-over-TCP lane with `tcpLanes`); a lost connection fails its
 * pending calls with `unavailable` and the next call reconnects (with QUIC 0-RTT when the
 * server's session ticket allows).
 *
 * @example
 * ```ts
 * import { RpcClient, RpcServer } from "@rpcnet/cluster";
 *
 * const server = new RpcServer().register("echo", (req) => req);
 * await server.start();
 * const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * console.log(await client.call("echo", { hello: "world" }, { timeoutMs: 1000 }));
 * await client.close();
 * await server.close();
 * ```
 */
export class RpcClient {
  #settings: ConnectSettings;
  #shared: ClientShared;
  #endpoint: Deno.QuicEndpoint;
  #ownsEndpoint: boolean;
  #conn: ClientConnection | undefined;
  #connecting: Promise<ClientConnection> | undefined;
  #failedAt = 0;
  #failure: RpcError | undefined;
  #closed = false;
  #closing = new AbortController();
  #stats = { connects: 0, zeroRttConnects: 0 };
  #getConn = (): Promise<ClientConnection> => this.#connection();

  private constructor(
    settings: ConnectSettings,
    shared: ClientShared,
    endpoint: Deno.QuicEndpoint | undefined,
  ) {
    this.#settings = settings;
    this.#shared = shared;
    // One endpoint for every (re)connect: it keeps the TLS session tickets 0-RTT needs.
    this.#ownsEndpoint = endpoint === undefined;
    this.#endpoint = endpoint ?? new Deno.QuicEndpoint({
      hostname: settings.hostname.includes(":") ? "::" : "0.0.0.0",
      port: 0,
    });
  }

  /**
   * Connects to a server and completes the secret challenge.
   *
   * @throws {RpcError} `unavailable` (unreachable, timeout), `unauthenticated` (secret rejected),
   * `invalid_argument` (bad options), `failed_precondition` (Deno without `--unstable-net`)
   */
  static async connect(options: RpcClientOptions): Promise<RpcClient> {
    requireNetApis("RpcClient.connect", ["quic"]);
    checkPlainObject("RpcClient.connect options", options);
    if (options.hostname === undefined) {
      throw invalidOption("hostname", "a host name or IP literal (required)", undefined);
    }
    checkString("hostname", options.hostname, undefined);
    if (options.port === undefined) throw invalidOption("port", "a port (required)", undefined);
    const port = checkInt("port", options.port, -1, 1, 65535);
    checkSecret("secret", options.secret);
    checkPems("devCa", options.devCa, ["certPem"]);
    if (options.caCerts !== undefined) checkStringArray("caCerts", options.caCerts, []);
    checkString("serverName", options.serverName, undefined);
    const zeroRtt = checkBoolean("zeroRtt", options.zeroRtt, true);
    const tcpLanes = checkBoolean("tcpLanes", options.tcpLanes, false);
    const lanes = checkInt("lanes", options.lanes, 4, 1, 64);
    const maxFrameBytes = checkInt(
      "maxFrameBytes",
      options.maxFrameBytes,
      DEFAULT_MAX_FRAME_BYTES,
      64,
      MAX_FRAME_LIMIT,
    );
    const connectTimeoutMs = checkDurationMs("connectTimeoutMs", options.connectTimeoutMs, 5000, 1);
    if (options.endpoint !== undefined && !(options.endpoint instanceof Deno.QuicEndpoint)) {
      throw invalidOption("endpoint", "a Deno.QuicEndpoint", options.endpoint);
    }
    const limits = new PayloadLimits(options);
    const caCerts = options.caCerts ?? [(options.devCa ?? await defaultDevCa()).certPem];
    const key = options.secret === undefined ? undefined : await importSecret(options.secret);
    const client = new RpcClient(
      {
        hostname: options.hostname,
        port,
        caCerts,
        serverName: options.serverName,
        lanes,
        connectTimeoutMs,
        zeroRtt,
        key,
        tcpLanes,
      },
      {
        codec: new PayloadCodec(limits),
        maxFrameBytes,
        heads: new Map(),
        tcpLaneCounts: { opened: 0, fallbacks: 0 },
      },
      options.endpoint,
    );
    try {
      await client.#connection();
    } catch (e) {
      await client.close();
      throw e;
    }
    return client;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Whether a usable connection is open now: `false` before the first connect, after the
   * connection was lost or the server sent GOAWAY (the next call reconnects).
   */
  get connected(): boolean {
    return this.#conn !== undefined && this.#conn.usable && this.#conn.error === undefined;
  }

  /**
   * What carries the current connection's small unary calls: `"tcp"` once its TCP lane is
   * attached (option `tcpLanes`, against a server that offers them), else `"quic"` (also
   * while not connected).
   */
  get laneTransport(): "quic" | "tcp" {
    return this.#conn?.laneTransport ?? "quic";
  }

  /** Connection counters. */
  stats(): RpcClientStats {
    const tcp = this.#shared.tcpLaneCounts;
    return {
      ...this.#stats,
      pendingCalls: this.#conn?.pendingCalls ?? 0,
      tcpLanes: tcp.opened,
      tcpLaneFallbacks: tcp.fallbacks,
    };
  }

  /**
   * Calls `method` with `request`; resolves with the handler's result.
   *
   * @throws {RpcError} the handler's `RpcError`, `internal` for other handler errors,
   * `not_found`, `deadline_exceeded`, `cancelled`, `resource_exhausted`, `unavailable`
   */
  call<T = unknown>(method: string, request: unknown, options?: CallOptions): Promise<T> {
    if (options !== undefined) {
      try {
        checkCallOptions(options);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const c = this.#conn;
    if (c !== undefined && c.usable) return c.call(method, request, options) as Promise<T>;
    return this.#connectFor(options).then((c) => c.call(method, request, options) as Promise<T>);
  }

  // (Re)connecting counts against the call's deadline and honours its signal.
  #connectFor(options: CallOptions | undefined): Promise<ClientConnection> {
    const connecting = this.#connection();
    const timeoutMs = options?.timeoutMs;
    const signal = options?.signal;
    if (timeoutMs === undefined && signal === undefined) return connecting;
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => {
        cleanup();
        reject(new RpcError("cancelled", "call cancelled while connecting"));
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(
            new RpcError(
              "deadline_exceeded",
              `deadline of ${timeoutMs} ms passed while connecting`,
            ),
          );
        }, timeoutMs);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      connecting.then((c) => {
        cleanup();
        resolve(c);
      }, (e) => {
        cleanup();
        reject(e);
      });
    });
  }

  /** Server-streaming call: the responses as an async iterable (break to cancel). */
  serverStream<T = unknown>(
    method: string,
    request: unknown,
    options?: CallOptions,
  ): AsyncIterable<T> {
    return serverStreamCall<T>(this.#getConn, this.#shared, method, request, options);
  }

  /** Client-streaming call: sends every item of `requests`; resolves with the one response. */
  clientStream<T = unknown>(
    method: string,
    requests: AsyncIterable<unknown>,
    options?: CallOptions,
  ): Promise<T> {
    return clientStreamCall<T>(this.#getConn, this.#shared, method, requests, options);
  }

  /** Bidirectional call: sends `requests` while yielding responses (break to cancel). */
  bidiStream<T = unknown>(
    method: string,
    requests: AsyncIterable<unknown>,
    options?: CallOptions,
  ): AsyncIterable<T> {
    return bidiStreamCall<T>(this.#getConn, this.#shared, method, requests, options);
  }

  /**
   * Closes the connection and the client's own endpoint (a shared `endpoint` stays open);
   * pending calls fail with `unavailable`.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    if (this.#ownsEndpoint) {
      try {
        this.#endpoint.close();
      } catch { /* already closed */ }
    }
    await this.#connecting?.catch(() => {});
    const c = this.#conn;
    this.#conn = undefined;
    if (c) {
      c.close();
      await c.conn.closed.catch(() => {});
    }
    if (this.#ownsEndpoint) {
      try {
        this.#endpoint.close();
      } catch { /* already closed */ }
    }
    deadlines.releaseIdle();
  }

  #connection(): Promise<ClientConnection> {
    if (this.#closed) return Promise.reject(new RpcError("unavailable", "client is closed"));
    const c = this.#conn;
    if (c !== undefined && c.usable) return Promise.resolve(c);
    if (this.#connecting) return this.#connecting;
    if (this.#failure && Date.now() - this.#failedAt < RECONNECT_BACKOFF_MS) {
      return Promise.reject(this.#failure);
    }
    this.#connecting = ClientConnection.open(
      this.#settings,
      this.#shared,
      this.#endpoint,
      this.#closing.signal,
    ).then(
      (conn) => {
        this.#connecting = undefined;
        this.#failure = undefined;
        if (this.#closed) {
          conn.close();
          throw new RpcError("unavailable", "client is closed");
        }
        this.#conn = conn;
        this.#stats.connects++;
        if (conn.zeroRtt) this.#stats.zeroRttConnects++;
        conn.onLost = (lost) => {
          if (this.#conn === lost) this.#conn = undefined;
        };
        if (conn.error) this.#conn = undefined;
        return conn;
      },
      (e) => {
        this.#connecting = undefined;
        this.#failure = e;
        this.#failedAt = Date.now();
        throw e;
      },
    );
    return this.#connecting;
  }
}
