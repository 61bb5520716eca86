/**
 * TCP lanes (`tcpLanes`): a connection's small unary calls over TLS on TCP instead of a QUIC
 * stream, because Deno's TLS/TCP stack costs less per call and per batch than its QUIC stack.
 * The QUIC connection stays the connection: handshake, secret challenge, control stream,
 * streaming calls and frames over 16 KiB.
 *
 * Protocol: the server's `HELLO` carries a random 32-byte token. Once authenticated, the client
 * connects TLS to the same host and port number (TCP and UDP ports are separate spaces), sends
 * `LANE_OPEN` with the token, and waits for `READY`; from then on the TLS connection is its
 * express lane (frames as on any lane). The server attaches the TCP connection to the QUIC
 * connection that issued the token: once per token, and only after that connection proved the
 * secret. Either closing closes the other.
 *
 * This module holds the server's accept path (tokens, deadline, caps) and the client's connect.
 *
 * @module
 */

import type { ServerShared } from "./context.ts";
import { FRAME_FIXED, RPC_ALPN, T } from "./frames.ts";
import { type Frame, FrameReader } from "./reader.ts";
import { FrameWriter } from "./writer.ts";

/** Bytes of a TCP lane token. */
export const LANE_TOKEN_BYTES = 32;
/** Time a TCP connection has for its TLS handshake and `LANE_OPEN`. */
export const TCP_LANE_OPEN_TIMEOUT_MS = 2000;
/** TCP connections that may be waiting for their `LANE_OPEN` at once. */
export const MAX_PENDING_TCP_LANES = 64;
// Buffer of a TCP connection until its LANE_OPEN (42 bytes) is read.
const FIRST_FRAME_BASE = 256;

/** What the accept path needs from the QUIC connection a token names. */
export interface TcpLaneHost {
  /** Why a TCP lane cannot attach now (unauthenticated, closed, has one), or undefined. */
  readonly tcpLaneRefusal: string | undefined;
  /**
   * Serves `conn` as the connection's TCP lane (its `LANE_OPEN` already read by `reader`);
   * resolves once the lane has ended.
   */
  attachTcpLane(conn: Deno.Conn, reader: FrameReader): Promise<void>;
}

function tokenKey(token: Uint8Array): string {
  return String.fromCharCode.apply(null, token as unknown as number[]);
}

/** The server's outstanding TCP lane tokens, each naming the QUIC connection it was sent on. */
export class TcpLaneTokens {
  #hosts = new Map<string, TcpLaneHost>();

  /** A fresh random token for `host`. */
  issue(host: TcpLaneHost): Uint8Array {
    const token = crypto.getRandomValues(new Uint8Array(LANE_TOKEN_BYTES));
    this.#hosts.set(tokenKey(token), host);
    return token;
  }

  /** Forgets `token` (its connection closed). */
  revoke(token: Uint8Array): void {
    this.#hosts.delete(tokenKey(token));
  }

  /** The connection `token` was issued to, forgetting the token: each is good for one try. */
  take(token: Uint8Array): TcpLaneHost | undefined {
    const key = tokenKey(token);
    const host = this.#hosts.get(key);
    this.#hosts.delete(key);
    return host;
  }

  /** Tokens outstanding. */
  get size(): number {
    return this.#hosts.size;
  }
}

/**
 * Accepts TLS connections and attaches each to the QUIC connection its token names. Before
 * that a connection is attack surface: it gets {@linkcode TCP_LANE_OPEN_TIMEOUT_MS} for its
 * handshake and `LANE_OPEN` (read with a limit of that frame's size); a bad frame, token or
 * handshake, or the deadline, closes it, counted in `rejectedTcpLanes` and logged rate-limited.
 *
 * Each connection not yet attached holds one of {@linkcode MAX_PENDING_TCP_LANES} slots, and
 * with the attached ones at most `maxConnections` are open; while none is free the listener
 * accepts nothing (new connections wait in the kernel's backlog, and clients whose lane does
 * not open in time stay on QUIC). A slot is freed once its socket is really closed: Deno cannot
 * close a TLS connection in the middle of its handshake (the handshake task keeps the socket
 * until the peer sends something or goes away), so a peer silent before its handshake keeps
 * its slot past the deadline. Silent peers can thus take the slots, never the file descriptors.
 */
export class TcpLaneListener {
  #shared: ServerShared;
  #listener: Deno.TlsListener;
  #tokens: TcpLaneTokens;
  #maxConnections: number;
  #pending = new Set<Deno.Conn>();
  #attached = 0;
  #closed = false;
  #slotFreed: (() => void) | undefined;
  #acceptLoop: Promise<void>;

  /**
   * Starts accepting on `listener`.
   *
   * @param shared server-wide state (counters, log)
   * @param listener the bound TLS listener
   * @param tokens the tokens the server's connections issued
   * @param maxConnections cap on TCP connections open at once (pending and attached)
   */
  constructor(
    shared: ServerShared,
    listener: Deno.TlsListener,
    tokens: TcpLaneTokens,
    maxConnections: number,
  ) {
    this.#shared = shared;
    this.#listener = listener;
    this.#tokens = tokens;
    this.#maxConnections = maxConnections;
    this.#acceptLoop = this.#accept();
  }

  /**
   * Stops accepting and closes the connections not yet attached (attached ones close with
   * their QUIC connection).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const conn of this.#pending) closeQuietly(conn);
    this.#pending.clear();
    this.#freeSlot();
    await this.#acceptLoop;
  }

  #hasSlot(): boolean {
    const pending = this.#pending.size;
    return pending < MAX_PENDING_TCP_LANES && pending + this.#attached < this.#maxConnections;
  }

  #freeSlot(): void {
    const wake = this.#slotFreed;
    this.#slotFreed = undefined;
    wake?.();
  }

  async #accept(): Promise<void> {
    for (;;) {
      while (!this.#closed && !this.#hasSlot()) {
        await new Promise<void>((r) => this.#slotFreed = r);
      }
      if (this.#closed) return;
      let conn: Deno.TlsConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (
          this.#closed || e instanceof Deno.errors.BadResource ||
          e instanceof Deno.errors.Interrupted
        ) return;
        // A passing failure (out of file descriptors): pause rather than spin.
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.#closed || this.#shared.draining) closeQuietly(conn);
      else this.#admit(conn);
    }
  }

  async #admit(conn: Deno.TlsConn): Promise<void> {
    this.#pending.add(conn);
    let handshook = false;
    const handshake = conn.handshake().then(() => {
      handshook = true;
    }, () => {});
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      this.#count(conn, `no LANE_OPEN within ${TCP_LANE_OPEN_TIMEOUT_MS} ms`);
      // Mid-handshake the read below ends only when the peer sends or leaves (see above).
      if (handshook) closeQuietly(conn);
    }, TCP_LANE_OPEN_TIMEOUT_MS);
    const reader = new FrameReader(
      conn,
      FRAME_FIXED + LANE_TOKEN_BYTES,
      undefined,
      FIRST_FRAME_BASE,
    );
    let first: Frame | null = null;
    let refusal: string | undefined;
    try {
      first = await reader.next();
    } catch (e) {
      // A failed TLS handshake, garbage (a frame error) or a reset.
      refusal = e instanceof Error ? e.message : String(e);
    } finally {
      clearTimeout(timer);
    }
    if (this.#closed) return closeQuietly(conn);
    let host: TcpLaneHost | undefined;
    if (!expired && refusal === undefined) {
      if (first === null) {
        refusal = "closed before LANE_OPEN";
      } else if (first.type !== T.LANE_OPEN || first.body.length !== LANE_TOKEN_BYTES) {
        refusal = `first frame must be LANE_OPEN with a ${LANE_TOKEN_BYTES}-byte token`;
      } else {
        host = this.#tokens.take(first.body);
        refusal = host === undefined ? "unknown or already used token" : host.tcpLaneRefusal;
      }
    }
    if (expired || refusal !== undefined) {
      if (!expired) this.#count(conn, refusal!);
      await handshake; // over by now, unless the deadline passed mid-handshake
      closeQuietly(conn);
      if (this.#pending.delete(conn)) this.#freeSlot();
      return;
    }
    this.#pending.delete(conn);
    this.#attached++;
    this.#shared.stats.tcpLanesOpened++;
    try {
      await host!.attachTcpLane(conn, reader);
    } finally {
      this.#attached--;
      this.#freeSlot();
    }
  }

  // Counts and logs a refused connection.
  #count(conn: Deno.Conn, reason: string): void {
    this.#shared.stats.rejectedTcpLanes++;
    const a = conn.remoteAddr as Deno.NetAddr;
    this.#shared.log.limited("warn", "tcp-lane", "rpc TCP lane rejected, connection closed", {
      remote: `${a.hostname}:${a.port}`,
      reason: reason.slice(0, 200),
    });
  }
}

/** Closes `conn`, which a failed read may have closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/** Where a client opens its TCP lane: the QUIC connection's server and trust settings. */
export interface TcpLaneTarget {
  /** Server host (as for QUIC). */
  hostname: string;
  /** Server port: the TCP port of the same number as the QUIC endpoint's UDP port. */
  port: number;
  /** Name verified against the server's certificate (default: `hostname`). */
  serverName: string | undefined;
  /** Trusted CA PEMs. */
  caCerts: string[];
}

/** An attached TCP lane on the client side. */
export interface ClientTcpLane {
  /** The TLS connection. */
  conn: Deno.TlsConn;
  /** Its frame writer (the `LANE_OPEN` already sent). */
  writer: FrameWriter;
  /** Its frame reader (the server's `READY` already read). */
  reader: FrameReader;
}

/**
 * Connects a TCP lane: TLS to `target` (verified like the QUIC connection), `LANE_OPEN` with
 * `token`, then the server's `READY`. Aborting `signal` (timeout, connection lost) closes it.
 *
 * @throws the connect, TLS or protocol failure, or `signal.reason`
 */
export async function connectTcpLane(
  target: TcpLaneTarget,
  token: Uint8Array,
  maxFrameBytes: number,
  signal: AbortSignal,
): Promise<ClientTcpLane> {
  let conn: Deno.Conn | undefined;
  const onAbort = () => conn && closeQuietly(conn);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const tcp = await Deno.connect({ hostname: target.hostname, port: target.port, signal });
    conn = tcp;
    signal.throwIfAborted();
    // startTls, not connectTls: only it verifies a name other than the address connected to.
    const tls = await Deno.startTls(tcp, {
      hostname: target.serverName ?? target.hostname,
      caCerts: target.caCerts,
      alpnProtocols: [RPC_ALPN],
    });
    conn = tls;
    signal.throwIfAborted();
    const writer = new FrameWriter(tls);
    writer.frame(T.LANE_OPEN, 0, 0, undefined, token, true);
    const reader = new FrameReader(tls, maxFrameBytes);
    const ack = await reader.next();
    signal.throwIfAborted();
    if (ack?.type !== T.READY) throw new Error("the server did not accept the TCP lane");
    return { conn: tls, writer, reader };
  } catch (e) {
    onAbort();
    throw signal.aborted ? signal.reason : e;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
