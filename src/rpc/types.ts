/**
 * Public types of the RPC layer: handlers, the per-call context, and client/server options.
 *
 * @module
 */

import type { Logger } from "../logger.ts";
import type { ServerInterceptor } from "./intercept.ts";
import type { DevCa, TlsConfig } from "./certs.ts";
import type { PayloadLimitOptions } from "./payload_limits.ts";

/**
 * What a handler sees about the call it serves.
 *
 * @example
 * ```ts
 * import { type CallContext, RpcServer } from "@rpcnet/cluster";
 *
 * async function report(req: unknown, ctx: CallContext): Promise<string> {
 *   console.log(`${ctx.method} from ${ctx.remoteAddr}, request ${ctx.meta["request-id"]}`);
 *   // Long work stops when the caller cancels or its deadline passes.
 *   await new Promise<void>((resolve, reject) => {
 *     const timer = setTimeout(resolve, 100);
 *     ctx.signal.addEventListener("abort", () => {
 *       clearTimeout(timer);
 *       reject(ctx.signal.reason);
 *     });
 *   });
 *   return `report on ${JSON.stringify(req)}`;
 * }
 * const server = new RpcServer().register("report", report);
 * ```
 */
export interface CallContext {
  /** The method name the caller used. */
  method: string;
  /**
   * Aborted when the caller cancels, the deadline passes (reason: `RpcError`
   * `deadline_exceeded` / `cancelled`), or the connection is lost.
   */
  signal: AbortSignal;
  /** Absolute deadline (epoch ms) when the caller set a timeout. */
  deadline?: number;
  /** The caller's address, `host:port`. */
  remoteAddr: string;
  /** String metadata the caller attached. */
  meta: Record<string, string>;
}

/** A unary handler: one request in, one response out (or a thrown error). */
export type Handler = (request: unknown, ctx: CallContext) => unknown | Promise<unknown>;

/**
 * The catch-all unary handler of {@linkcode RpcServer.registerFallback}: called for calls to a
 * method with no registered handler. Like a {@linkcode Handler}, but told the method name.
 */
export type FallbackHandler = (
  method: string,
  request: unknown,
  ctx: CallContext,
) => unknown | Promise<unknown>;

/** Options of {@linkcode RpcServer.register}. */
export interface RegisterOptions {
  /**
   * Hand the request to the handler as an `EncodedPayload` (its wire bytes, not decoded); the
   * handler may return one too. For proxies (default `false`).
   */
  encoded?: boolean;
}

/** Options of {@linkcode RpcServer.registerFallback}. */
export interface FallbackOptions {
  /**
   * Hand the request to the fallback as an `EncodedPayload` (its wire bytes, not decoded), and
   * let it return one: a proxy then forwards bytes without decoding them (default `false`).
   */
  encoded?: boolean;
}

/** A server-streaming handler: one request in, a sequence of responses out. */
export type ServerStreamHandler = (request: unknown, ctx: CallContext) => AsyncIterable<unknown>;

/** A client-streaming handler: a sequence of requests in, one response out. */
export type ClientStreamHandler = (
  requests: AsyncIterable<unknown>,
  ctx: CallContext,
) => Promise<unknown>;

/** A bidirectional-streaming handler: requests in and responses out, concurrently. */
export type BidiStreamHandler = (
  requests: AsyncIterable<unknown>,
  ctx: CallContext,
) => AsyncIterable<unknown>;

/**
 * Options of {@linkcode RpcServer}. Every field has a documented default. `maxPayloadDepth`
 * (default 100) and `maxPayloadElements` (default 1,000,000 array elements plus map entries)
 * bound what one request may make the decoder build; a request over them gets
 * `invalid_argument` and is counted in `invalidPayloads`.
 *
 * @example
 * ```ts
 * import { loadDevCa, RpcServer, type RpcServerOptions } from "@rpcnet/cluster";
 *
 * const options: RpcServerOptions = {
 *   hostname: "0.0.0.0",
 *   port: 7373,
 *   devCa: await loadDevCa("rpcnet-ca.pem"), // from `rpcnet ca create`
 *   secret: Deno.env.get("RPCNET_SECRET"),
 *   maxFrameBytes: 1024 * 1024, // larger calls get resource_exhausted
 *   drainTimeoutMs: 10_000,
 *   maxConnectionAgeMs: 10 * 60_000, // long-lived clients spread over restarted servers
 * };
 * const server = new RpcServer(options).register("ping", () => "pong");
 * await server.start();
 * ```
 */
export interface RpcServerOptions extends PayloadLimitOptions {
  /** Address to bind (default `"127.0.0.1"`). */
  hostname?: string;
  /** UDP port; 0 picks an ephemeral port, readable from `addr` after `start()` (default 0). */
  port?: number;
  /** Certificate chain and key; without it a certificate from `devCa` is issued. */
  tls?: TlsConfig;
  /** CA that signs the development certificate (default: `defaultDevCa()`). */
  devCa?: DevCa;
  /** Cluster secret every connection must prove (default: none). */
  secret?: string | Uint8Array;
  /** Largest frame accepted, in bytes (default 16 MiB). Larger calls get `resource_exhausted`. */
  maxFrameBytes?: number;
  /** Calls a connection may have running at once (default 16384); extra calls get `resource_exhausted`. */
  maxConcurrentCallsPerConnection?: number;
  /** How long `close()` lets in-flight calls finish (default 5000 ms). */
  drainTimeoutMs?: number;
  /** How long a new connection has to prove the secret (default 10000 ms). */
  authTimeoutMs?: number;
  /**
   * Age after which a connection is asked to go away (GOAWAY): its client finishes the calls
   * in flight and reconnects — with 0-RTT, as the session is warm. Spreads long-lived clients
   * over restarted or added servers (default: never).
   */
  maxConnectionAgeMs?: number;
  /**
   * Concurrent QUIC streams a client may open: lanes + streaming calls (default 128; each open
   * stream costs the server about 30 KiB).
   */
  maxStreamsPerConnection?: number;
  /**
   * Middleware around unary handlers, first outermost (default: none — handlers are called
   * directly). More can be added with `use()`.
   */
  interceptors?: readonly ServerInterceptor[];
  /**
   * Where handler errors (not `RpcError`s), authentication failures and protocol errors are
   * logged, rate-limited (default: silent).
   */
  logger?: Logger;
  /**
   * Connections held at once (default 1024); further ones are refused at the QUIC handshake
   * and counted in `refusedConnections`.
   */
  maxConnections?: number;
  /**
   * Lanes (long-lived unary streams) one connection may open (default 16; an `RpcClient` opens
   * `lanes`, default 4). A connection opening more is closed, counted in `refusedLanes`.
   */
  maxLanesPerConnection?: number;
  /**
   * Bytes of partly received frames one connection may hold in the server's buffers (default
   * 32 MiB, and at least `maxFrameBytes`). A request frame that does not fit while other large
   * frames are arriving gets `resource_exhausted` (its bytes are read and dropped), counted in
   * `bufferLimitRejects`. Raise it when one client sends several large frames at once.
   */
  maxBufferedBytesPerConnection?: number;
  /**
   * Bytes of partly received frames all connections together may hold (default 40 MiB, and at
   * least `maxFrameBytes`): many connections cannot multiply the per-connection budget. Frames
   * that do not fit are refused like those over the per-connection budget. Frames up to 64 KiB
   * never draw on either budget, so small calls keep working while large ones are refused.
   */
  maxBufferedBytes?: number;
  /**
   * Time a frame has to arrive completely once its header did (default 30000 ms); a
   * connection that stalls inside a frame is closed, counted in `frameTimeouts`.
   */
  frameTimeoutMs?: number;
  /**
   * Also accept TCP lanes (default `false`): `start()` listens with TLS over TCP on the same
   * host and the same port number as the QUIC endpoint, with the same certificate. A client
   * with `tcpLanes` then sends its small unary calls over TCP, which costs Deno less per call
   * than its QUIC stack (measured on loopback, raw framed echo at 64 in flight: TLS/TCP 250K
   * req/s, QUIC 175K; at one in flight 9.6K against 5.9K). Everything else (handshake, secret,
   * streaming calls, frames over 16 KiB) stays on QUIC. The TCP port must be reachable as well
   * as the UDP one. Clients older than TCP lanes reject this server's longer `HELLO`: upgrade
   * clients first.
   *
   * A TCP connection must complete TLS and present its QUIC connection's token within 2 s, else
   * it is closed, as after a bad or reused token, counted in `rejectedTcpLanes`. At most 64 may
   * be waiting for that and at most `maxConnections` be open; further ones wait in the kernel's
   * backlog (their clients' calls stay on QUIC). Deno cannot close a TLS connection in the
   * middle of its handshake, so a peer that stays silent before it keeps its place until it
   * sends or leaves: such peers can hold the 64 places (new TCP lanes then fail over to QUIC),
   * never more sockets than that.
   */
  tcpLanes?: boolean;
}

/** Counters of an {@linkcode RpcServer}. */
export interface RpcServerStats {
  /** Connections currently open. */
  connections: number;
  /** Connections accepted since start. */
  connectionsTotal: number;
  /** Calls (unary and streaming) currently running. */
  activeCalls: number;
  /** Calls started since start. */
  callsTotal: number;
  /** Connections closed because they sent a malformed frame. */
  protocolErrors: number;
  /** Connections closed because they failed the secret challenge. */
  authFailures: number;
  /** Calls refused with `resource_exhausted` (too large or too many). */
  rejectedCalls: number;
  /**
   * Requests and streamed messages refused with `invalid_argument` because their payload or
   * metadata was not valid MessagePack or broke `maxPayloadDepth` / `maxPayloadElements`.
   */
  invalidPayloads: number;
  /** Connections refused because `maxConnections` were open. */
  refusedConnections: number;
  /**
   * Connections closed for sending more than the handshake before proving the secret: more
   * than two streams, a frame other than `LANE_OPEN`, or any frame over 4 KiB.
   */
  preAuthViolations: number;
  /** Connections closed for opening more than `maxLanesPerConnection` lanes. */
  refusedLanes: number;
  /**
   * Frames refused because they did not fit `maxBufferedBytesPerConnection` or
   * `maxBufferedBytes`.
   */
  bufferLimitRejects: number;
  /** Connections closed because a frame was not completed within `frameTimeoutMs`. */
  frameTimeouts: number;
  /** TCP lanes attached to their QUIC connection since start (with `tcpLanes`). */
  tcpLanesOpened: number;
  /**
   * TCP connections refused instead of becoming a lane: no valid `LANE_OPEN` within 2 s (TLS
   * failure, garbage, silence), an unknown or already used token, or a token of a connection
   * that has not proven the secret.
   */
  rejectedTcpLanes: number;
}

/**
 * Per-call options of {@linkcode RpcClient} methods.
 *
 * @example
 * ```ts
 * import type { RpcClient } from "@rpcnet/cluster";
 *
 * declare const client: RpcClient;
 * const stop = new AbortController(); // e.g. aborted when the user navigates away
 * const hits = await client.call("search", { q: "deno" }, {
 *   timeoutMs: 500,
 *   signal: stop.signal,
 *   meta: { "request-id": crypto.randomUUID() },
 * });
 * ```
 */
export interface CallOptions {
  /** Deadline relative to now; the call fails with `deadline_exceeded` and the handler's signal aborts. */
  timeoutMs?: number;
  /** Aborting it cancels the call (`cancelled`) and tells the server. */
  signal?: AbortSignal;
  /** String metadata delivered to the handler as `ctx.meta`. */
  meta?: Record<string, string>;
  /**
   * Resolve with the response as an `EncodedPayload` (its wire bytes), without decoding it
   * (default `false`). Unary calls only.
   */
  encoded?: boolean;
}

/**
 * Options of {@linkcode RpcClient.connect}. `maxPayloadDepth` (default 100) and
 * `maxPayloadElements` (default 1,000,000) bound what one response may make the decoder build;
 * a response over them fails its call with `internal` ("response payload rejected: …").
 *
 * @example
 * ```ts
 * import { loadDevCa, RpcClient, type RpcClientOptions } from "@rpcnet/cluster";
 *
 * const options: RpcClientOptions = {
 *   hostname: "10.0.0.5",
 *   port: 7373,
 *   devCa: await loadDevCa("rpcnet-ca.pem"), // the CA the server's certificate comes from
 *   secret: Deno.env.get("RPCNET_SECRET"),
 *   lanes: 8,
 *   connectTimeoutMs: 2000,
 * };
 * const client = await RpcClient.connect(options);
 * ```
 */
export interface RpcClientOptions extends PayloadLimitOptions {
  /** Server host name or IP literal. */
  hostname: string;
  /** Server UDP port. */
  port: number;
  /** PEM CA certificates to trust (default: the `devCa`, or `defaultDevCa()`). */
  caCerts?: string[];
  /** Name checked against the server certificate (default: `hostname`). */
  serverName?: string;
  /** Development CA to trust when `caCerts` is not given. */
  devCa?: DevCa;
  /** Cluster secret, when the server requires one. */
  secret?: string | Uint8Array;
  /**
   * Long-lived streams unary calls are spread over (default 4); at most the server's
   * `maxLanesPerConnection` (default 16).
   */
  lanes?: number;
  /** Largest frame sent or accepted, in bytes (default 16 MiB). */
  maxFrameBytes?: number;
  /** How long a (re)connect may take, handshake and authentication included (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Try QUIC 0-RTT on reconnects when a session ticket is available (default true). */
  zeroRtt?: boolean;
  /**
   * A client `Deno.QuicEndpoint` to connect through, shared with other clients: one UDP socket
   * and one QUIC endpoint driver for all of them, and one store of TLS session tickets for 0-RTT.
   * The client does not close it; its owner closes it after the clients. Its address family must
   * match `hostname`'s (bind `0.0.0.0` for IPv4, `::` for IPv6). Default: an endpoint of the
   * client's own, closed by `close()`.
   */
  endpoint?: Deno.QuicEndpoint;
  /**
   * Send small unary calls over a TLS-over-TCP lane when the server offers one (its
   * `tcpLanes`), default `false`: faster unary calls (Deno's TLS/TCP costs less per call than
   * its QUIC), but the server's TCP port (the same number as its UDP port) must be reachable
   * too. The lane opens in the background after the QUIC connection is authenticated (calls use
   * QUIC until then; see `laneTransport`). A server without TCP lanes, or a TCP connect that
   * fails, leaves the calls on QUIC (counted in `tcpLaneFallbacks`). Losing the TCP lane loses
   * the connection: its calls fail with `unavailable` and the next call reconnects.
   */
  tcpLanes?: boolean;
}

/** Counters of an {@linkcode RpcClient}. */
export interface RpcClientStats {
  /** Successful connects (the first one and every reconnect). */
  connects: number;
  /**
   * Connects made with 0-RTT: Deno had a session ticket for the server and returned the
   * connection at once, so the first calls left with the handshake. (Deno does not report
   * whether the server accepted the early data; after a server restart it is rejected and the
   * handshake falls back to a full one, transparently.)
   */
  zeroRttConnects: number;
  /** Unary calls waiting for their response. */
  pendingCalls: number;
  /** TCP lanes opened (with `tcpLanes`, one per connection to a server that offers them). */
  tcpLanes: number;
  /** TCP lanes that could not be opened (connect, TLS or the server refused): calls stayed on QUIC. */
  tcpLaneFallbacks: number;
}
