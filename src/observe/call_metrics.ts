/**
 * Per-method call counters and latency histograms, filled by a server and a client interceptor.
 * A call costs a map lookup by method (skipped when it repeats the last one), two clock reads shared with the rest of the burst
 * (`tickNow`), a bucket scan of 16 compares and a few array increments; nothing allocates.
 *
 * @module
 */

import { RPC_ERROR_CODES, RpcError, type RpcErrorCode } from "../errors.ts";
import type { ServerInterceptor } from "../rpc/intercept.ts";
import type { ClientInterceptor } from "../client/intercept.ts";
import { tickNow } from "../tick_clock.ts";

/** Upper bounds of the latency histogram buckets, seconds (Prometheus `le`), `+Inf` implied. */
export const LATENCY_BUCKETS_S: readonly number[] = Object.freeze([
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
]);
const BUCKETS_MS = LATENCY_BUCKETS_S.map((s) => s * 1000);

/** Outcome codes counted per method: `ok`, then every {@linkcode RpcErrorCode}. */
export const OUTCOME_CODES: readonly ("ok" | RpcErrorCode)[] = Object.freeze([
  "ok",
  ...RPC_ERROR_CODES,
]);
const CODE_INDEX = new Map<string, number>(OUTCOME_CODES.map((c, i) => [c, i]));
const INTERNAL = CODE_INDEX.get("internal")!;

/** A fixed-bucket latency histogram (non-cumulative counts; the last bucket is `+Inf`). */
export class LatencyHistogram {
  /** Count per bucket, `LATENCY_BUCKETS_S.length + 1` of them. */
  readonly counts: Float64Array = new Float64Array(BUCKETS_MS.length + 1);
  /** Sum of observed latencies, seconds. */
  sum = 0;
  /** Observations. */
  count = 0;

  /** Records one latency in milliseconds. */
  observeMs(ms: number): void {
    let i = 0;
    while (i < BUCKETS_MS.length && ms > BUCKETS_MS[i]) i++;
    this.counts[i]++;
    this.sum += ms / 1000;
    this.count++;
  }
}

/** Counters of one method. */
export class MethodMetrics {
  /** The method. */
  readonly method: string;
  /** Finished calls per outcome, indexed like {@linkcode OUTCOME_CODES}. */
  readonly outcomes: Float64Array = new Float64Array(OUTCOME_CODES.length);
  /** Latency of finished calls. */
  readonly latency: LatencyHistogram = new LatencyHistogram();
  /** Calls running now. */
  inFlight = 0;
  /** Attribute objects per outcome for OpenTelemetry, built once each (see `otel.ts`). */
  readonly attributes: (Record<string, string> | undefined)[] = [];

  /**
   * Creates empty counters.
   *
   * @param method the method these counters are for
   */
  constructor(method: string) {
    this.method = method;
  }
}

/** Called with each finished call, e.g. to feed an OpenTelemetry histogram. */
export type CallObserver = (m: MethodMetrics, code: number, ms: number) => void;

/** Most distinct methods tracked; calls to further methods are counted under `method="other"`. */
export const MAX_TRACKED_METHODS = 512;

/** Per-method call metrics of one side (server or client). */
export class CallMetrics {
  #byMethod = new Map<string, MethodMetrics>();
  #other: MethodMetrics | undefined;
  #last: MethodMetrics | undefined;
  /** Optional hook for every finished call. */
  onCall: CallObserver | undefined;

  /** Every method's counters. */
  methods(): MethodMetrics[] {
    const out = [...this.#byMethod.values()];
    if (this.#other) out.push(this.#other);
    return out;
  }

  /** The counters of `method` (created on first use; bounded, see {@linkcode MAX_TRACKED_METHODS}). */
  of(method: string): MethodMetrics {
    // Most traffic is one method after another of the same name: skip the map for a repeat.
    const last = this.#last;
    if (last !== undefined && last.method === method) return last;
    let m = this.#byMethod.get(method);
    if (m !== undefined) return this.#last = m;
    // A fallback handler accepts any method name a caller sends: cap the label set.
    if (this.#byMethod.size >= MAX_TRACKED_METHODS) {
      return this.#other ??= new MethodMetrics("other");
    }
    this.#byMethod.set(method, m = new MethodMetrics(method));
    return this.#last = m;
  }

  #done(m: MethodMetrics, t0: number, e: unknown): void {
    m.inFlight--;
    const code = e === undefined
      ? 0
      : e instanceof RpcError
      ? (CODE_INDEX.get(e.code) ?? INTERNAL)
      : INTERNAL;
    m.outcomes[code]++;
    const ms = tickNow() - t0;
    m.latency.observeMs(ms);
    this.onCall?.(m, code, ms);
  }

  /** A server interceptor that counts every unary call by method and outcome, and times it. */
  serverInterceptor(): ServerInterceptor {
    return (call, next) => {
      const m = this.of(call.method);
      const t0 = tickNow();
      m.inFlight++;
      let r: unknown;
      try {
        r = next(call);
      } catch (e) {
        this.#done(m, t0, e);
        throw e;
      }
      if (
        r === null || typeof r !== "object" ||
        typeof (r as PromiseLike<unknown>).then !== "function"
      ) {
        this.#done(m, t0, undefined);
        return r;
      }
      return (r as Promise<unknown>).then((v) => {
        this.#done(m, t0, undefined);
        return v;
      }, (e) => {
        this.#done(m, t0, e);
        throw e;
      });
    };
  }

  /**
   * Counts streaming calls (server, client and bidi streaming) by method and outcome when their
   * handler ends, with their duration; the server's call observer reports them (the unary
   * interceptors do not see streams). Unary calls are left to {@linkcode serverInterceptor}.
   */
  readonly streamObserver = (
    method: string,
    durationMs: number | undefined,
    error: unknown,
    streaming: boolean,
  ): void => {
    if (!streaming) return;
    const m = this.of(method);
    const code = error === undefined
      ? 0
      : error instanceof RpcError
      ? (CODE_INDEX.get(error.code) ?? INTERNAL)
      : INTERNAL;
    m.outcomes[code]++;
    const ms = durationMs ?? 0;
    m.latency.observeMs(ms);
    this.onCall?.(m, code, ms);
  };

  /** A client interceptor that counts every `callWorker` by method and outcome, and times it. */
  clientInterceptor(): ClientInterceptor {
    return (call, next) => {
      const m = this.of(call.method);
      const t0 = tickNow();
      m.inFlight++;
      return next(call).then((v) => {
        this.#done(m, t0, undefined);
        return v;
      }, (e) => {
        this.#done(m, t0, e);
        throw e;
      });
    };
  }
}
