/**
 * The server side of a streaming call: one QUIC stream per call. Requests (client and
 * bidirectional kinds) reach the handler as an async iterable fed by a bounded inbox; responses
 * are written with backpressure (`await writer.ready`). A `CANCEL` frame, the caller closing the
 * stream early, the deadline, or the connection closing abort `ctx.signal`.
 *
 * @module
 */

import { ServerCallContext, type ServerShared } from "./context.ts";
import { RpcError } from "../errors.ts";
import { FRAME_FIXED, FrameError, KIND, parseRequestHead, T } from "./frames.ts";
import { Inbox } from "./inbox.ts";
import type { Frame, FrameReader } from "./reader.ts";
import type { LaneHost } from "./server_lane.ts";
import { errorBody } from "./status.ts";
import type { BidiStreamHandler, ClientStreamHandler, ServerStreamHandler } from "./types.ts";
import { FrameWriter } from "./writer.ts";

/** Frames a streaming call may queue before the server stops reading (backpressure). */
export const STREAM_INBOX_FRAMES = 16;

/** What a streaming call needs from its connection. */
export interface StreamHost extends LaneHost {
  /** Registers a running call so a lost connection aborts it; returns the unregister function. */
  track(ctx: ServerCallContext): () => void;
}

/**
 * Serves one streaming call on `stream`, whose `STREAM_OPEN` frame is `open`. Resolves when the
 * call finished; rejects with `FrameError` when the caller broke the protocol.
 */
export async function serveStream(
  shared: ServerShared,
  host: StreamHost,
  stream: Deno.QuicBidirectionalStream,
  reader: FrameReader,
  open: Frame,
): Promise<void> {
  const writer = new FrameWriter(stream.writable);
  const sendError = (e: unknown) => writer.frame(T.ERROR, 0, 0, undefined, errorBody(e), true);
  const body = open.body;
  if (body.length < 1 || body[0] < KIND.SERVER || body[0] > KIND.BIDI) {
    throw new FrameError("bad STREAM_OPEN kind");
  }
  const kind = body[0];
  const head = parseRequestHead(body, 1, open.flags);
  const refuse = async (e: RpcError) => {
    sendError(e);
    await writer.close();
    reader.cancel();
  };
  if (shared.draining) return refuse(new RpcError("unavailable", "server is shutting down"));
  if (host.active >= shared.maxCalls) {
    shared.stats.rejectedCalls++;
    return refuse(new RpcError("resource_exhausted", "too many concurrent calls"));
  }
  const entry = shared.handlers.get(head.method);
  if (!entry || entry.kind !== kind) {
    const what = kind === KIND.SERVER
      ? "server-streaming"
      : kind === KIND.CLIENT
      ? "client-streaming"
      : "bidirectional";
    return refuse(new RpcError("not_found", `no ${what} handler for method '${head.method}'`));
  }
  let request: unknown, meta: Record<string, string>;
  try {
    meta = head.metaLen
      ? shared.codec.decodeMeta(body.subarray(head.metaStart, head.metaStart + head.metaLen))
      : {};
    request = kind === KIND.SERVER
      ? shared.codec.decode(open.flags, body.subarray(head.payloadStart))
      : undefined;
  } catch (e) {
    shared.stats.invalidPayloads++;
    return refuse(e as RpcError);
  }

  const deadline = head.timeoutMs === undefined ? undefined : Date.now() + head.timeoutMs;
  const ctx = new ServerCallContext(head.method, host.remoteAddr, deadline, meta);
  const signal = ctx.signal;
  const abort = (e: RpcError) => {
    ctx.abort(e);
    inbox.fail(e);
  };
  const untrack = host.track(ctx);
  host.active++;
  shared.stats.activeCalls++;
  shared.stats.callsTotal++;
  const timer = head.timeoutMs === undefined ? undefined : setTimeout(
    () => abort(new RpcError("deadline_exceeded", `deadline of ${head.timeoutMs} ms exceeded`)),
    head.timeoutMs,
  );
  writer.onError = () => abort(new RpcError("cancelled", "caller closed the stream"));
  let oversize = false;
  const inbox = new Inbox(reader, STREAM_INBOX_FRAMES, (f) => {
    if (f.type !== T.CANCEL) return false;
    abort(new RpcError("cancelled", "cancelled by caller"));
    return true;
  }, (type, _flags, _id, _length, overBudget) => {
    if (type !== T.MESSAGE) return false;
    oversize = true;
    if (overBudget) shared.stats.bufferLimitRejects++;
    return false;
  });
  let protocolError: FrameError | undefined;
  let requestsEnded = kind === KIND.SERVER;
  // After the requests ended, anything but a clean close means the caller went away.
  const watchForCancel = () => {
    inbox.next().then(
      () => abort(new RpcError("cancelled", "caller closed the stream")),
      () => abort(new RpcError("cancelled", "caller closed the stream")),
    );
  };
  async function* requests(): AsyncGenerator<unknown> {
    for (;;) {
      let f: Frame | null;
      try {
        f = await inbox.next();
      } catch (e) {
        if (e instanceof FrameError) {
          if (oversize) {
            throw new RpcError(
              "resource_exhausted",
              "request message exceeds maxFrameBytes or this connection's buffer budget",
            );
          }
          protocolError = e;
          throw new RpcError("invalid_argument", e.message);
        }
        throw RpcError.is(e) ? e : new RpcError("cancelled", "caller closed the stream");
      }
      if (f === null) throw new RpcError("cancelled", "caller closed the stream");
      if (f.type === T.END) {
        requestsEnded = true;
        watchForCancel();
        return;
      }
      if (f.type !== T.MESSAGE) {
        protocolError = new FrameError(`unexpected frame type ${f.type} in a request stream`);
        throw new RpcError("invalid_argument", protocolError.message);
      }
      let v: unknown;
      try {
        v = shared.codec.decode(f.flags, f.body);
      } catch (e) {
        shared.stats.invalidPayloads++;
        throw e;
      }
      yield v;
    }
  }
  const send = async (source: AsyncIterable<unknown>) => {
    for await (const v of source) {
      if (signal.aborted) throw signal.reason;
      const bytes = shared.codec.encode(v);
      if (bytes.length + FRAME_FIXED > shared.maxFrameBytes) {
        throw new RpcError("resource_exhausted", "response message exceeds maxFrameBytes");
      }
      writer.frame(T.MESSAGE, shared.codec.flags, 0, undefined, bytes, shared.codec.owned);
      await writer.ready();
      if (signal.aborted) throw signal.reason;
    }
  };

  try {
    if (requestsEnded) watchForCancel();
    if (kind === KIND.SERVER) {
      await send((entry.fn as ServerStreamHandler)(request, ctx));
      writer.frame(T.END, 0, 0);
    } else if (kind === KIND.CLIENT) {
      const v = await (entry.fn as ClientStreamHandler)(requests(), ctx);
      if (signal.aborted) throw signal.reason;
      const bytes = shared.codec.encode(v);
      if (bytes.length + FRAME_FIXED > shared.maxFrameBytes) {
        throw new RpcError("resource_exhausted", "response exceeds maxFrameBytes");
      }
      writer.frame(T.RESPONSE, shared.codec.flags, 0, undefined, bytes, shared.codec.owned);
    } else {
      await send((entry.fn as BidiStreamHandler)(requests(), ctx));
      writer.frame(T.END, 0, 0);
    }
  } catch (e) {
    if (!signal.aborted) sendError(e);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    ctx.abort(new RpcError("cancelled", "call finished"));
    untrack();
    host.active--;
    shared.stats.activeCalls--;
    shared.onCallDone();
    inbox.fail(new RpcError("cancelled", "call finished"));
    await writer.close();
    reader.cancel();
  }
  if (protocolError) throw protocolError;
}
