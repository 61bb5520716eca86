/**
 * One accepted QUIC connection on the server: the control stream (challenge, GOAWAY), then
 * every stream the client opens — a lane (`LANE_OPEN`) or a streaming call (`STREAM_OPEN`) —
 * and, with `tcpLanes`, the TCP lane the client attaches with the token from `HELLO`.
 * A malformed frame closes this connection only, with `RPC_CLOSE_CODES.PROTOCOL_ERROR`.
 *
 * Memory a connection can make the server hold is bounded: before it proves the secret it may
 * open two streams and send `LANE_OPEN` frames only (anything else, or a frame over 4 KiB,
 * closes it); every stream is read continuously (a paused QUIC stream would let the peer fill a
 * receive window); buffers beyond a stream's base size come from the connection's
 * {@linkcode ByteBudget}; lanes are capped; a frame stalled after its header is found by
 * {@linkcode ServerConnection.sweep}.
 *
 * @module
 */

import { newNonce, verifyProof } from "./auth.ts";
import { connectionLost, type ServerCallContext, type ServerShared } from "./context.ts";
import { RpcError } from "../errors.ts";
import { ByteBudget } from "./budget.ts";
import { FrameError, RPC_CLOSE_CODES, T } from "./frames.ts";
import { CONTROL_MAX_FRAME, PRE_AUTH_STREAMS } from "./limits.ts";
import { BASE_BYTES, FrameReader } from "./reader.ts";
import { ServerLane } from "./server_lane.ts";
import { closeQuietly, type TcpLaneHost } from "./tcp_lanes.ts";
import { serveStream, type StreamHost } from "./server_stream.ts";
import { errorBody } from "./status.ts";
import { FrameWriter } from "./writer.ts";

// Buffer of a stream until its first frame says what it is: idle streams cost little.
const FIRST_FRAME_BASE = 1024;
// Buffer of a streaming call's stream.
const STREAM_BASE = 16 * 1024;

/** Server state of one client connection. */
export class ServerConnection implements StreamHost, TcpLaneHost {
  /** The client's address, `host:port`. */
  readonly remoteAddr: string;
  /** Calls running on this connection. */
  active = 0;
  /** Resolves once the connection is closed and its calls aborted. */
  readonly closed: Promise<void>;
  #shared: ServerShared;
  #conn: Deno.QuicConn;
  #lanes = new Set<ServerLane>();
  #streams = new Set<ServerCallContext>();
  #control: FrameWriter | undefined;
  #ready: Promise<boolean>;
  #isClosed = false;
  #ageTimer: ReturnType<typeof setTimeout> | undefined;
  #authenticated: boolean;
  #budget: ByteBudget;
  #readers = new Set<FrameReader>();
  #preAuthStreams = 0;
  #laneToken: Uint8Array | undefined;
  #tcp: { conn: Deno.Conn; lane: ServerLane } | undefined;
  #tcpAttached = false;

  /**
   * @param shared server-wide state
   * @param conn the accepted connection (possibly still completing its handshake)
   */
  constructor(shared: ServerShared, conn: Deno.QuicConn) {
    this.#shared = shared;
    this.#conn = conn;
    this.remoteAddr = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
    this.#authenticated = shared.key === undefined;
    this.#budget = new ByteBudget(shared.maxBufferedBytes, shared.bufferBudget);
    conn.handshake.catch(() => {});
    this.closed = conn.closed.then(() => {}, () => {}).then(() => this.#onClosed());
    this.#ready = this.#challenge();
    this.#acceptStreams();
    const age = shared.maxConnectionAgeMs;
    if (age > 0) {
      this.#ageTimer = setTimeout(() => {
        this.goAway();
        this.#ageTimer = setTimeout(
          () => this.close(RPC_CLOSE_CODES.GOING_AWAY, "connection age exceeded"),
          shared.drainTimeoutMs,
        );
      }, age);
    }
  }

  /** Whether the connection proved the cluster secret (always true without one). */
  get authenticated(): boolean {
    return this.#authenticated;
  }

  /** Closes the connection if one of its frames stalled longer than `frameTimeoutMs`. */
  sweep(now: number, frameTimeoutMs: number): void {
    for (const r of this.#readers) {
      const since = r.partialSince;
      if (since !== 0 && now - since > frameTimeoutMs) {
        this.#refuse("frameTimeouts", `a frame was not completed within ${frameTimeoutMs} ms`);
        return;
      }
    }
  }

  /** Registers a running streaming call (aborted if the connection is lost). */
  track(ctx: ServerCallContext): () => void {
    this.#streams.add(ctx);
    return () => this.#streams.delete(ctx);
  }

  /** Tells the client to send no new calls here (the server is draining). */
  goAway(): void {
    this.#control?.frame(T.GOAWAY, 0, 0);
  }

  /** Closes the connection with `code`; running calls are aborted. */
  close(code: number, reason: string): void {
    if (this.#isClosed) return;
    try {
      this.#conn.close({ closeCode: code, reason });
    } catch { /* already closed */ }
    this.#onClosed();
  }

  #onClosed(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    clearTimeout(this.#ageTimer);
    if (this.#laneToken) this.#shared.tcpLaneTokens?.revoke(this.#laneToken);
    const lost = connectionLost();
    for (const lane of this.#lanes) lane.abortAll(lost);
    if (this.#tcp) {
      this.#tcp.lane.abortAll(lost);
      closeQuietly(this.#tcp.conn);
      this.#tcp = undefined;
    }
    for (const ctx of this.#streams) ctx.abort(lost);
    this.#lanes.clear();
    this.#streams.clear();
  }

  #protocolError(e: FrameError): void {
    if (!this.#authenticated) return this.#refuse("preAuthViolations", e.message);
    if (this.#isClosed) return;
    this.#shared.stats.protocolErrors++;
    this.#shared.log.limited("warn", "protocol", "rpc protocol error, connection closed", {
      remote: this.remoteAddr,
      error: e.message,
    });
    this.close(RPC_CLOSE_CODES.PROTOCOL_ERROR, `protocol error: ${e.message}`.slice(0, 120));
  }

  // Closes the connection for breaking a limit, counted under `counter`.
  #refuse(
    counter: "preAuthViolations" | "refusedLanes" | "frameTimeouts",
    reason: string,
  ): void {
    if (this.#isClosed) return;
    this.#shared.stats[counter]++;
    this.close(RPC_CLOSE_CODES.PROTOCOL_ERROR, reason.slice(0, 120));
  }

  /** Why a TCP lane cannot attach now, or undefined when it can. */
  get tcpLaneRefusal(): string | undefined {
    if (this.#isClosed) return "its QUIC connection is closed";
    if (!this.#authenticated) return "its QUIC connection has not proven the secret";
    if (this.#tcpAttached) return "its QUIC connection has a TCP lane already";
    return undefined;
  }

  /**
   * Serves `conn` as this connection's TCP lane, under the connection's limits (buffer budget,
   * frame size, frame timeout, concurrent calls) like a QUIC lane. The lane ending (closed,
   * reset, malformed) closes the QUIC connection: the client then fails its pending calls and
   * reconnects, as after any lost connection.
   */
  async attachTcpLane(conn: Deno.Conn, reader: FrameReader): Promise<void> {
    this.#tcpAttached = true;
    const shared = this.#shared;
    reader.maxFrameBytes = shared.maxFrameBytes;
    reader.useBudget(this.#budget);
    reader.setBase(BASE_BYTES);
    this.#readers.add(reader);
    const writer = new FrameWriter(conn);
    writer.frame(T.READY, 0, 0);
    const lane = new ServerLane(shared, this, writer, reader);
    this.#tcp = { conn, lane };
    try {
      await lane.run();
    } catch (e) {
      if (e instanceof FrameError) this.#protocolError(e);
    } finally {
      this.#readers.delete(reader);
      reader.release();
      closeQuietly(conn);
      this.close(RPC_CLOSE_CODES.NORMAL, "TCP lane closed");
    }
  }

  async #challenge(): Promise<boolean> {
    const key = this.#shared.key;
    let stream: Deno.QuicBidirectionalStream;
    try {
      stream = await this.#conn.createBidirectionalStream();
    } catch {
      return false;
    }
    const writer = this.#control = new FrameWriter(stream.writable);
    const nonce = newNonce();
    const tokens = this.#shared.tcpLaneTokens;
    if (tokens && !this.#isClosed) this.#laneToken = tokens.issue(this);
    const token = this.#laneToken;
    const hello = new Uint8Array(1 + nonce.length + (token ? token.length : 0));
    hello[0] = key ? 1 : 0;
    hello.set(nonce, 1);
    if (token) hello.set(token, 1 + nonce.length);
    writer.frame(T.HELLO, 0, 0, undefined, hello, true);
    if (!key) return true;
    const reader = new FrameReader(stream.readable, CONTROL_MAX_FRAME);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let ok = false;
    try {
      const frame = await Promise.race([
        reader.next(),
        new Promise<null>((r) => timer = setTimeout(() => r(null), this.#shared.authTimeoutMs)),
      ]);
      ok = frame !== null && frame.type === T.AUTH && await verifyProof(key, nonce, frame.body);
    } catch {
      /* a broken control stream fails the challenge */
    } finally {
      clearTimeout(timer);
    }
    if (ok) {
      // Before READY leaves: the client's first calls may follow it at once.
      this.#authenticated = true;
      for (const r of this.#readers) r.maxFrameBytes = this.#shared.maxFrameBytes;
      writer.frame(T.READY, 0, 0);
      return true;
    }
    this.#shared.stats.authFailures++;
    this.#shared.log.limited("warn", "auth", "rpc authentication failed", {
      remote: this.remoteAddr,
    });
    const err = new RpcError("unauthenticated", "wrong or missing cluster secret");
    writer.frame(T.ERROR, 0, 0, undefined, errorBody(err), true);
    // Let the ERROR frame leave before the close discards unsent stream data; a 0-RTT
    // client may not see the close code.
    setTimeout(() => this.close(RPC_CLOSE_CODES.UNAUTHENTICATED, err.message), 100);
    return false;
  }

  async #acceptStreams(): Promise<void> {
    const incoming = this.#conn.incomingBidirectionalStreams.getReader();
    try {
      for (;;) {
        const { value, done } = await incoming.read();
        if (done) return;
        this.#serve(value);
      }
    } catch {
      /* the connection closed */
    } finally {
      incoming.releaseLock();
    }
  }

  async #serve(stream: Deno.QuicBidirectionalStream): Promise<void> {
    const shared = this.#shared;
    if (!this.#authenticated && ++this.#preAuthStreams > PRE_AUTH_STREAMS) {
      return this.#refuse(
        "preAuthViolations",
        `more than ${PRE_AUTH_STREAMS} streams before authentication`,
      );
    }
    // Before the secret is proven the stream is still read (so QUIC buffers nothing for it),
    // but only a LANE_OPEN of at most 4 KiB is accepted: a wrong secret runs no handler.
    const reader = new FrameReader(
      stream.readable,
      this.#authenticated ? shared.maxFrameBytes : CONTROL_MAX_FRAME,
      this.#budget,
      FIRST_FRAME_BASE,
    );
    this.#readers.add(reader);
    try {
      const first = await reader.next();
      if (first === null) return;
      if (first.type === T.LANE_OPEN) {
        if (this.#lanes.size >= shared.maxLanes) {
          return this.#refuse("refusedLanes", `more than ${shared.maxLanes} lanes`);
        }
        reader.setBase(BASE_BYTES);
        const lane = new ServerLane(shared, this, new FrameWriter(stream.writable), reader);
        this.#lanes.add(lane);
        try {
          await lane.run();
        } finally {
          this.#lanes.delete(lane);
        }
      } else if (!this.#authenticated) {
        throw new FrameError(`frame type ${first.type} before authentication`);
      } else if (first.type === T.STREAM_OPEN) {
        reader.setBase(STREAM_BASE);
        await serveStream(shared, this, stream, reader, first);
      } else {
        throw new FrameError(`stream must start with LANE_OPEN or STREAM_OPEN, not ${first.type}`);
      }
    } catch (e) {
      if (e instanceof FrameError) this.#protocolError(e);
      // Other errors: the stream or connection was reset; the close handler cleans up.
    } finally {
      this.#readers.delete(reader);
      reader.release();
    }
  }
}
