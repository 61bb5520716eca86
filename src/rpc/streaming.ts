/**
 * The client side of streaming calls: server-streaming, client-streaming and bidirectional, one
 * QUIC stream each, exposed as async iterables. Requests are sent with backpressure (the pump
 * awaits the stream's `ready`); responses are read through a bounded inbox. Breaking out of a
 * `for await`, the signal or the deadline cancels the call on the server (`CANCEL` frame).
 *
 * @module
 */

import type { ClientConnection, ClientShared } from "./client_conn.ts";
import { requestHead } from "./client_conn.ts";
import { RpcError } from "../errors.ts";
import { FRAME_FIXED, FrameError, KIND, T } from "./frames.ts";
import { Inbox } from "./inbox.ts";
import { type Frame, FrameReader } from "./reader.ts";
import { closeError, parseErrorBody } from "./status.ts";
import type { CallOptions } from "./types.ts";
import { checkCallOptions } from "./rpc_options.ts";
import { FrameWriter } from "./writer.ts";

const INBOX_FRAMES = 16;

/** One streaming call in progress on the client. */
class StreamCall {
  #conn: ClientConnection;
  #shared: ClientShared;
  #writer: FrameWriter;
  #reader: FrameReader;
  #inbox: Inbox;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #done = false;
  #doneResolve!: () => void;
  /** Resolves when the call finished (normally or not). */
  readonly finished: Promise<void> = new Promise((r) => this.#doneResolve = r);
  #error: RpcError | undefined;

  constructor(
    conn: ClientConnection,
    shared: ClientShared,
    stream: Deno.QuicBidirectionalStream,
    options: CallOptions | undefined,
    method: string,
  ) {
    this.#conn = conn;
    this.#shared = shared;
    this.#writer = new FrameWriter(stream.writable);
    this.#reader = new FrameReader(stream.readable, shared.maxFrameBytes);
    this.#inbox = new Inbox(this.#reader, INBOX_FRAMES);
    this.#writer.onError = (e) => this.fail(this.#conn.error ?? closeError(undefined, e));
    conn.streams++;
    const timeoutMs = options?.timeoutMs;
    if (timeoutMs !== undefined) {
      this.#timer = setTimeout(
        () =>
          this.fail(
            new RpcError("deadline_exceeded", `'${method}' exceeded its ${timeoutMs} ms deadline`),
          ),
        timeoutMs,
      );
    }
    const signal = options?.signal;
    if (signal) {
      this.#signal = signal;
      this.#onAbort = () =>
        this.fail(new RpcError("cancelled", `'${method}' cancelled by the caller`));
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** Opens the stream and sends `STREAM_OPEN` (with the request for server-streaming). */
  static async open(
    getConn: () => Promise<ClientConnection>,
    shared: ClientShared,
    kind: number,
    method: string,
    request: unknown,
    options: CallOptions | undefined,
  ): Promise<StreamCall> {
    if (options !== undefined) checkCallOptions(options);
    if (options?.signal?.aborted) throw new RpcError("cancelled", "call cancelled");
    const { head, flags } = requestHead(shared, method, options?.timeoutMs, options?.meta);
    const full = new Uint8Array(1 + head.length);
    full[0] = kind;
    full.set(head, 1);
    const codec = shared.codec;
    const conn = await getConn();
    const stream = await conn.openStream();
    const call = new StreamCall(conn, shared, stream, options, method);
    let payload: Uint8Array | undefined;
    let pflags = 0;
    try {
      if (kind === KIND.SERVER) {
        payload = codec.encode(request);
        pflags = codec.flags;
        if (FRAME_FIXED + full.length + payload.length > shared.maxFrameBytes) {
          throw new RpcError("resource_exhausted", "request exceeds maxFrameBytes");
        }
      }
    } catch (e) {
      call.fail(e as RpcError);
      throw e;
    }
    call.#writer.frame(T.STREAM_OPEN, flags | pflags, 0, full, payload, codec.owned);
    return call;
  }

  /** Whether the call has finished. */
  get done(): boolean {
    return this.#done;
  }

  /** The next frame from the server, mapped: null never (a missing status is `unavailable`). */
  async next(): Promise<Frame> {
    let f: Frame | null;
    try {
      f = await this.#inbox.next();
    } catch (e) {
      if (this.#error) throw this.#error;
      if (e instanceof FrameError) {
        throw this.fail(new RpcError("unavailable", `protocol error from server: ${e.message}`));
      }
      throw this.fail(this.#conn.error ?? closeError(undefined, e));
    }
    if (f === null) {
      throw this.fail(
        this.#conn.error ?? new RpcError("unavailable", "stream ended without a status"),
      );
    }
    if (f.type === T.ERROR) throw this.fail(parseErrorBody(f.body), false);
    return f;
  }

  /**
   * Decodes a message body; a body this client refuses to decode fails the call with `internal`
   * (the server's fault, not the caller's argument).
   */
  decode(f: Frame): unknown {
    try {
      return this.#shared.codec.decode(f.flags, f.body);
    } catch (e) {
      throw this.fail(new RpcError("internal", `response ${(e as Error).message}`, { cause: e }));
    }
  }

  /** Sends every item of `requests`, then `END`; stops early when the call finishes. */
  async pump(requests: AsyncIterable<unknown>): Promise<void> {
    let it: AsyncIterator<unknown>;
    try {
      it = requests[Symbol.asyncIterator]();
    } catch (e) {
      this.fail(new RpcError("invalid_argument", `requests is not async iterable: ${e}`));
      return;
    }
    const stop = this.finished.then(() => null);
    let ended = false;
    try {
      while (!this.#done) {
        const r = await Promise.race([it.next(), stop]);
        if (r === null || this.#done) break;
        if (r.done) {
          ended = true;
          this.#writer.frame(T.END, 0, 0);
          return;
        }
        const codec = this.#shared.codec;
        const bytes = codec.encode(r.value);
        if (FRAME_FIXED + bytes.length > this.#shared.maxFrameBytes) {
          throw new RpcError("resource_exhausted", "request message exceeds maxFrameBytes");
        }
        this.#writer.frame(T.MESSAGE, codec.flags, 0, undefined, bytes, codec.owned);
        await Promise.race([this.#writer.ready(), stop]);
      }
    } catch (e) {
      this.fail(
        RpcError.is(e)
          ? e
          : new RpcError("cancelled", `request stream failed: ${(e as Error)?.message ?? e}`, {
            cause: e,
          }),
      );
    } finally {
      if (!ended) Promise.resolve(it.return?.()).catch(() => {});
    }
  }

  /** Ends the call with `err` (telling the server unless it reported the error itself). */
  fail(err: RpcError, tellServer = true): RpcError {
    if (this.#done) return this.#error ?? err;
    this.#error = err;
    this.#finish();
    this.#inbox.fail(err);
    if (tellServer) this.#writer.frame(T.CANCEL, 0, 0);
    this.#writer.close();
    this.#reader.cancel();
    return err;
  }

  /** Ends a call that completed normally (or was abandoned by the consumer: then cancels). */
  close(): void {
    if (this.#done) return;
    this.fail(new RpcError("cancelled", "stream closed by the consumer"));
  }

  /** Marks a normal completion. */
  complete(): void {
    if (this.#done) return;
    this.#finish();
    this.#writer.close();
    this.#reader.cancel();
  }

  #finish(): void {
    this.#done = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#onAbort) this.#signal!.removeEventListener("abort", this.#onAbort);
    this.#conn.streamDone();
    this.#doneResolve();
  }
}

/** Server-streaming call: one request, the responses as an async iterable. */
export async function* serverStreamCall<T>(
  getConn: () => Promise<ClientConnection>,
  shared: ClientShared,
  method: string,
  request: unknown,
  options?: CallOptions,
): AsyncGenerator<T, void, undefined> {
  const call = await StreamCall.open(getConn, shared, KIND.SERVER, method, request, options);
  yield* receiveMessages<T>(call);
}

/** Client-streaming call: the requests from an async iterable, one response. */
export async function clientStreamCall<T>(
  getConn: () => Promise<ClientConnection>,
  shared: ClientShared,
  method: string,
  requests: AsyncIterable<unknown>,
  options?: CallOptions,
): Promise<T> {
  const call = await StreamCall.open(getConn, shared, KIND.CLIENT, method, undefined, options);
  call.pump(requests);
  try {
    const f = await call.next();
    if (f.type !== T.RESPONSE) throw call.fail(new RpcError("unavailable", "unexpected frame"));
    const v = call.decode(f) as T;
    call.complete();
    return v;
  } finally {
    call.close();
  }
}

/** Bidirectional call: requests from an async iterable, responses as an async iterable. */
export async function* bidiStreamCall<T>(
  getConn: () => Promise<ClientConnection>,
  shared: ClientShared,
  method: string,
  requests: AsyncIterable<unknown>,
  options?: CallOptions,
): AsyncGenerator<T, void, undefined> {
  const call = await StreamCall.open(getConn, shared, KIND.BIDI, method, undefined, options);
  call.pump(requests);
  yield* receiveMessages<T>(call);
}

/** Yields a stream call's MESSAGE frames until END; closes the call however iteration ends. */
async function* receiveMessages<T>(call: StreamCall): AsyncGenerator<T, void, undefined> {
  try {
    for (;;) {
      const f = await call.next();
      if (f.type === T.END) return call.complete();
      if (f.type !== T.MESSAGE) throw call.fail(new RpcError("unavailable", "unexpected frame"));
      yield call.decode(f) as T;
    }
  } finally {
    call.close();
  }
}
