/**
 * The server side of a lane: unary requests read from one long-lived stream (a QUIC stream, or
 * the connection's TCP lane), dispatched to handlers, answered on the same stream (responses
 * coalesced per microtask by the writer).
 *
 * @module
 */

import { CallTable } from "./call_table.ts";
import { type Deadline, deadlines } from "./deadlines.ts";
import { ServerCallContext, type ServerShared } from "./context.ts";
import { RpcError } from "../errors.ts";
import {
  F,
  FRAME_FIXED,
  FrameError,
  KIND,
  parseRequestHead,
  type RequestHead,
  T,
} from "./frames.ts";
import { frameBody, type FrameHandler, type FrameReader } from "./reader.ts";
import { errorBody } from "./status.ts";
import type { Handler } from "./types.ts";
import type { FrameWriter } from "./writer.ts";
import { InterceptedCall, type ServerTarget } from "./intercept.ts";

/** What a lane needs from its connection. */
export interface LaneHost {
  /** The caller's address, `host:port`. */
  readonly remoteAddr: string;
  /** Whether the connection proved the cluster secret (always true without one). */
  readonly authenticated: boolean;
  /** Calls running on the connection. */
  active: number;
}

// Shared by calls without metadata (frozen: handlers must not write to ctx.meta).
const EMPTY_META: Record<string, string> = Object.freeze({}) as Record<string, string>;

interface LaneCall {
  id: number;
  ctx: ServerCallContext;
  deadline: Deadline | undefined;
  done: boolean;
}

/** Serves unary calls arriving on one lane stream. */
export class ServerLane {
  #shared: ServerShared;
  #host: LaneHost;
  #reader: FrameReader;
  #writer: FrameWriter;
  #calls = new CallTable<LaneCall>();
  #head: RequestHead = {
    method: "",
    timeoutMs: undefined,
    metaStart: 0,
    metaLen: 0,
    payloadStart: 0,
  };

  /**
   * @param shared server-wide state
   * @param host the connection
   * @param writer the writer of the lane's send side (a QUIC stream or a TLS connection)
   * @param reader the reader of its receive side, its `LANE_OPEN` frame already read
   */
  constructor(
    shared: ServerShared,
    host: LaneHost,
    writer: FrameWriter,
    reader: FrameReader,
  ) {
    this.#shared = shared;
    this.#host = host;
    this.#reader = reader;
    this.#writer = writer;
  }

  /** Reads until the lane ends; rejects with `FrameError` on malformed input. */
  run(): Promise<void> {
    return this.#reader.run(this.#onFrame, this.#onOversize);
  }

  /** Aborts every running call (connection lost or server closing). */
  abortAll(reason: RpcError): void {
    for (const call of this.#calls.values()) {
      if (this.#end(call)) call.ctx.abort(reason);
    }
    this.#writer.abort();
  }

  #onFrame: FrameHandler = (type, flags, id, buf, start, end, owned) => {
    // A client sends nothing on a lane but LANE_OPEN before the server's READY.
    if (!this.#host.authenticated) throw new FrameError("lane frame before authentication");
    if (type === T.REQUEST) return this.#request(flags, id, buf, start, end, owned);
    if (type === T.CANCEL) {
      const call = this.#calls.get(id);
      if (call && this.#end(call)) {
        call.ctx.abort(
          flags & F.DEADLINE
            ? new RpcError("deadline_exceeded", "the caller's deadline passed")
            : new RpcError("cancelled", "cancelled by caller"),
        );
      }
      return;
    }
    throw new FrameError(`unexpected frame type ${type} on a lane`);
  };

  #onOversize = (
    type: number,
    _flags: number,
    id: number,
    length: number,
    overBudget: boolean,
  ): boolean => {
    if (type !== T.REQUEST || !this.#host.authenticated) return false;
    const stats = this.#shared.stats;
    stats.rejectedCalls++;
    if (overBudget) stats.bufferLimitRejects++;
    this.#sendError(
      id,
      new RpcError(
        "resource_exhausted",
        overBudget
          ? `request frame of ${length} bytes does not fit this connection's buffer budget ` +
            `(maxBufferedBytesPerConnection ${this.#shared.maxBufferedBytes}) while other ` +
            `large frames are in flight; retry later`
          : `request frame of ${length} bytes exceeds the server's maxFrameBytes ${this.#shared.maxFrameBytes}`,
      ),
    );
    return true;
  };

  // The request is `body[start..end)`, in place in the reader's buffer.
  #request(
    flags: number,
    id: number,
    body: Uint8Array,
    start: number,
    end: number,
    owned: boolean,
  ): void {
    const shared = this.#shared;
    const head = parseRequestHead(body, start, flags, this.#head, end);
    if (shared.draining) {
      return this.#sendError(id, new RpcError("unavailable", "server is shutting down"));
    }
    if (this.#host.active >= shared.maxCalls) {
      shared.stats.rejectedCalls++;
      return this.#sendError(
        id,
        new RpcError(
          "resource_exhausted",
          `more than ${shared.maxCalls} concurrent calls on this connection`,
        ),
      );
    }
    const entry = shared.handlers.get(head.method);
    const fallback = entry === undefined ? shared.fallback : undefined;
    if (entry ? entry.kind !== KIND.UNARY : fallback === undefined) {
      return this.#sendError(
        id,
        new RpcError("not_found", `no unary handler for method '${head.method}'`),
      );
    }
    let request: unknown, meta: Record<string, string>;
    try {
      meta = head.metaLen
        ? shared.codec.decodeMeta(body.subarray(head.metaStart, head.metaStart + head.metaLen))
        : EMPTY_META;
      const at = head.payloadStart;
      request = (entry ? entry.encoded : fallback!.encoded)
        ? shared.codec.keep(flags, frameBody(body, at, end), owned)
        : shared.codec.decodeAt(flags, body, at, end, owned);
    } catch (e) {
      shared.stats.invalidPayloads++;
      return this.#sendError(id, e);
    }
    const timeoutMs = head.timeoutMs;
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const ctx = new ServerCallContext(head.method, this.#host.remoteAddr, deadline, meta);
    shared.stats.callsTotal++;
    let result: unknown;
    try {
      const intercept = shared.intercept;
      if (intercept !== undefined) {
        const method = head.method;
        const target: ServerTarget = entry
          ? (entry.fn as Handler)
          : (req, c) => fallback!.fn(method, req, c);
        result = intercept(new InterceptedCall(method, request, ctx, target));
      } else {
        result = entry
          ? (entry.fn as Handler)(request, ctx)
          : fallback!.fn(head.method, request, ctx);
      }
    } catch (e) {
      this.#handlerError(ctx, e);
      return this.#sendError(id, e);
    }
    if (
      result === null || typeof result !== "object" ||
      typeof (result as PromiseLike<unknown>).then !== "function"
    ) {
      // Synchronous handler: nothing to cancel or time out, so no bookkeeping.
      return this.#respond(id, result);
    }
    const call: LaneCall = { id, ctx, deadline: undefined, done: false };
    this.#calls.set(id, call);
    this.#host.active++;
    shared.stats.activeCalls++;
    if (timeoutMs !== undefined) {
      call.deadline = deadlines.add(timeoutMs, () => {
        if (this.#end(call)) {
          ctx.abort(new RpcError("deadline_exceeded", `deadline of ${timeoutMs} ms exceeded`));
        }
      });
    }
    Promise.resolve(result).then((v) => this.#ok(call, v), (e) => this.#fail(call, e));
  }

  #end(call: LaneCall): boolean {
    if (call.done) return false;
    call.done = true;
    this.#calls.take(call.id);
    if (call.deadline !== undefined) deadlines.cancel(call.deadline);
    this.#host.active--;
    this.#shared.stats.activeCalls--;
    this.#shared.onCallDone();
    return true;
  }

  #ok(call: LaneCall, value: unknown): void {
    if (this.#end(call)) this.#respond(call.id, value);
  }

  #respond(id: number, value: unknown): void {
    const codec = this.#shared.codec;
    let bytes: Uint8Array | undefined;
    try {
      // A MessagePack response goes straight into the lane's batch when it fits there.
      bytes = codec.encodeFrame(
        this.#writer,
        T.RESPONSE,
        0,
        id,
        undefined,
        value,
        this.#shared.maxFrameBytes,
      );
      if (bytes === undefined) return;
    } catch (e) {
      return this.#sendError(
        id,
        new RpcError("internal", `handler result cannot be encoded: ${(e as Error).message}`),
      );
    }
    if (bytes.length + FRAME_FIXED > this.#shared.maxFrameBytes) {
      return this.#sendError(
        id,
        new RpcError(
          "resource_exhausted",
          `response of ${bytes.length} bytes exceeds maxFrameBytes`,
        ),
      );
    }
    this.#writer.frame(T.RESPONSE, codec.flags, id, undefined, bytes, codec.owned);
  }

  #fail(call: LaneCall, e: unknown): void {
    if (!this.#end(call)) return;
    this.#handlerError(call.ctx, e);
    this.#sendError(call.id, e);
  }

  /** Logs a handler failure that is not a deliberate `RpcError` (those are answers). */
  #handlerError(ctx: ServerCallContext, e: unknown): void {
    if (e instanceof RpcError) return;
    this.#shared.log.limited("error", `handler:${ctx.method}`, "handler threw", {
      method: ctx.method,
      remote: ctx.remoteAddr,
      error: e instanceof Error ? e.message : String(e),
    });
  }

  #sendError(id: number, e: unknown): void {
    this.#writer.frame(T.ERROR, 0, id, undefined, errorBody(e), true);
  }
}
