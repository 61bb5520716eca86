/**
 * One accepted QUIC connection on the server: the control stream (challenge, GOAWAY), then
 * every stream the client opens — a lane (`LANE_OPEN`) or a streaming call (`STREAM_OPEN`).
 * A malformed frame closes this connection only, with `RPC_CLOSE_CODES.PROTOCOL_ERROR`.
 *
 * @module
 */

import { newNonce, verifyProof } from "./auth.ts";
import { connectionLost, type ServerCallContext, type ServerShared } from "./context.ts";
import { RpcError } from "../errors.ts";
import { FrameError, RPC_CLOSE_CODES, T } from "./frames.ts";
import { FrameReader } from "./reader.ts";
import { ServerLane } from "./server_lane.ts";
import { serveStream, type StreamHost } from "./server_stream.ts";
import { errorBody } from "./status.ts";
import { FrameWriter } from "./writer.ts";

const CONTROL_MAX_FRAME = 4096;

/** Server state of one client connection. */
export class ServerConnection implements StreamHost {
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

  /**
   * @param shared server-wide state
   * @param conn the accepted connection (possibly still completing its handshake)
   */
  constructor(shared: ServerShared, conn: Deno.QuicConn) {
    this.#shared = shared;
    this.#conn = conn;
    this.remoteAddr = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
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
    const lost = connectionLost();
    for (const lane of this.#lanes) lane.abortAll(lost);
    for (const ctx of this.#streams) ctx.abort(lost);
    this.#lanes.clear();
    this.#streams.clear();
  }

  #protocolError(e: FrameError): void {
    if (this.#isClosed) return;
    this.#shared.stats.protocolErrors++;
    this.#shared.log.limited("warn", "protocol", "rpc protocol error, connection closed", {
      remote: this.remoteAddr,
      error: e.message,
    });
    this.close(RPC_CLOSE_CODES.PROTOCOL_ERROR, `protocol error: ${e.message}`.slice(0, 120));
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
    const hello = new Uint8Array(1 + nonce.length);
    hello[0] = key ? 1 : 0;
    hello.set(nonce, 1);
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
    const reader = new FrameReader(stream.readable, this.#shared.maxFrameBytes);
    try {
      // Nothing from an unauthenticated connection is read, so a wrong secret runs no handler.
      if (!(await this.#ready)) return reader.cancel();
      const first = await reader.next();
      if (first === null) return;
      if (first.type === T.LANE_OPEN) {
        const lane = new ServerLane(this.#shared, this, stream, reader);
        this.#lanes.add(lane);
        try {
          await lane.run();
        } finally {
          this.#lanes.delete(lane);
        }
      } else if (first.type === T.STREAM_OPEN) {
        await serveStream(this.#shared, this, stream, reader, first);
      } else {
        throw new FrameError(`stream must start with LANE_OPEN or STREAM_OPEN, not ${first.type}`);
      }
    } catch (e) {
      if (e instanceof FrameError) this.#protocolError(e);
      // Other errors: the stream or connection was reset; the close handler cleans up.
    }
  }
}
