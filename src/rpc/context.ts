/**
 * The server's per-call context (`ctx` of a handler) and the state every server connection
 * shares (handler table, limits, counters).
 *
 * @module
 */

import type { SecretKey } from "./auth.ts";
import { type LogFields, type Logger, type LogLevel, LogRateLimiter } from "../logger.ts";
import type { InterceptedCall } from "./intercept.ts";
import type { ByteBudget } from "./budget.ts";
import type { PayloadCodec } from "./codec.ts";
import type { TcpLaneTokens } from "./tcp_lanes.ts";
import { RpcError } from "../errors.ts";
import type { CallContext, FallbackHandler, RpcServerStats } from "./types.ts";

/** A registered handler and its kind. */
export interface HandlerEntry {
  /** One of `KIND` (frames.ts). */
  kind: number;
  /** The handler function (its type depends on `kind`). */
  fn: (...args: never[]) => unknown;
  /** Unary only: the request is handed over as an `EncodedPayload`, not decoded. */
  encoded: boolean;
}

/** State shared by an `RpcServer` and all its connections. */
export interface ServerShared {
  /** Handlers by method name. */
  handlers: Map<string, HandlerEntry>;
  /** The unary catch-all for methods without a handler, if registered. */
  fallback: { fn: FallbackHandler; encoded: boolean } | undefined;
  /** Payload codec (synchronous use only). */
  codec: PayloadCodec;
  /** Largest accepted frame. */
  maxFrameBytes: number;
  /** Budget of partly received frame bytes per connection. */
  maxBufferedBytes: number;
  /** The server-wide budget every connection's budget draws from too. */
  bufferBudget: ByteBudget;
  /** Lanes per connection. */
  maxLanes: number;
  /** Time to complete a frame once its header arrived. */
  frameTimeoutMs: number;
  /** Concurrent calls per connection. */
  maxCalls: number;
  /** GOAWAY after this age (0: never). */
  maxConnectionAgeMs: number;
  /** Time a GOAWAY'd connection gets before it is closed. */
  drainTimeoutMs: number;
  /** Time a connection has to authenticate. */
  authTimeoutMs: number;
  /** The cluster secret's key, when required. */
  key: SecretKey | undefined;
  /** The TCP lane tokens connections issue in `HELLO`, when `tcpLanes` is on. */
  tcpLaneTokens: TcpLaneTokens | undefined;
  /** Counters (mutated in place). */
  stats: RpcServerStats;
  /** True once `close()` began: new calls are refused with `unavailable`. */
  draining: boolean;
  /** Called whenever a call finishes (the drain waits on it). */
  onCallDone: () => void;
  /** The interceptor chain of unary calls; `undefined` when none is installed. */
  intercept: ((call: InterceptedCall) => unknown) | undefined;
  /** Logs failures that are otherwise only counted (rate-limited per kind). */
  log: RateLimitedLog;
}

/** A logger with a rate limit per message key, for failures a peer can trigger at line rate. */
export class RateLimitedLog {
  /** The logger. */
  readonly logger: Logger;
  #limiter = new LogRateLimiter(10_000, 5);

  /**
   * Wraps a logger.
   *
   * @param logger where records go
   */
  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** Logs `msg` at `level` unless more than 5 records of `key` were logged in the last 10 s. */
  limited(level: LogLevel, key: string, msg: string, fields: LogFields): void {
    if (!this.logger.enabled(level)) return;
    const suppressed = this.#limiter.admit(key);
    if (suppressed < 0) return;
    this.logger[level](msg, suppressed > 0 ? { ...fields, suppressed } : fields);
  }
}

/** A handler's view of its call; the signal is created on first access (most handlers never read it). */
export class ServerCallContext implements CallContext {
  /** The method name. */
  readonly method: string;
  /** The caller's address. */
  readonly remoteAddr: string;
  /** Absolute deadline (epoch ms), when set. */
  readonly deadline: number | undefined;
  /** The caller's metadata (an interceptor may replace it, e.g. to pass a trace context on). */
  meta: Record<string, string>;
  #ac: AbortController | undefined;
  #reason: RpcError | undefined;

  /**
   * @param method method name
   * @param remoteAddr caller address
   * @param deadline absolute deadline (epoch ms)
   * @param meta caller metadata
   */
  constructor(
    method: string,
    remoteAddr: string,
    deadline: number | undefined,
    meta: Record<string, string>,
  ) {
    this.method = method;
    this.remoteAddr = remoteAddr;
    this.deadline = deadline;
    this.meta = meta;
  }

  /** Aborted on cancel, deadline or connection loss. */
  get signal(): AbortSignal {
    if (!this.#ac) {
      this.#ac = new AbortController();
      if (this.#reason) this.#ac.abort(this.#reason);
    }
    return this.#ac.signal;
  }

  /** Whether the call was aborted. */
  get aborted(): boolean {
    return this.#reason !== undefined;
  }

  /** Aborts the call's signal with `reason` (first reason wins). */
  abort(reason: RpcError): void {
    if (this.#reason) return;
    this.#reason = reason;
    this.#ac?.abort(reason);
  }
}

/** The abort reason for a call whose connection was lost. */
export function connectionLost(): RpcError {
  return new RpcError("unavailable", "connection to the caller was lost");
}
