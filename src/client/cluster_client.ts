/**
 * ClusterClient: load-balanced RPC to the workers a {@linkcode WorkerRegistry} selects.
 *
 * Every attempt, unary or streaming, goes through one bookkeeping path: select a worker for the
 * filter, take its pooled connection, tell the balancer the attempt started, call with the
 * remaining deadline, then book latency and outcome with the balancer, the outlier detector, the
 * pool (an answer proves the connection alive) and the counters.
 *
 * Failover: an attempt that never reached a handler (its connection could not be opened, or
 * the worker rejected this client's secret) is tried on another worker for every call; an
 * idempotent call is also failed over on `unavailable` and when an attempt exceeds its per-try
 * timeout. Hedging (idempotent calls, optional) sends a second attempt to another worker when
 * the first has not answered after a latency percentile; the first answer wins. Failovers and
 * hedges both spend the retry budget.
 *
 * @module
 */

import { RPC_ERROR_CODES, RpcError, type RpcErrorCode } from "../errors.ts";
import {
  checkBoolean,
  checkDurationMs,
  checkInt,
  checkNumber,
  checkPlainObject,
  invalidOption,
} from "../options.ts";
import { RpcClient } from "../rpc/client.ts";
import type { DevCa } from "../rpc/certs.ts";
import type { ClusterEvent, ClusterEventType } from "../membership/types.ts";
import { checkFilter, describeFilter, type FilterInput } from "../registry/filter.ts";
import type { Worker, WorkerRegistry } from "../registry/worker_registry.ts";
import { ConnectionPool, type Connector, type PooledConnection } from "./pool.ts";
import { RetryBudget, type RetryBudgetOptions } from "./retry_budget.ts";
import { OutlierDetector, type OutlierOptions } from "./outlier.ts";
import { LatencyWindow } from "./latency_window.ts";
import { tickNow } from "../tick_clock.ts";
import { type ClientInterceptor, type ClientNext, composeClientInterceptors } from "./intercept.ts";

/**
 * Hedging of idempotent calls: when the first attempt has not answered after a delay, a second
 * attempt goes to another worker (spending the retry budget) and the first answer wins; the
 * other attempt is cancelled.
 */
export interface HedgingOptions {
  /**
   * Hedge after this percentile (0 < p < 100) of the latencies of recent successful attempts.
   * Default 95.
   */
  percentile?: number;
  /** Hedge after this fixed delay, ms, instead of a percentile. Default: none (percentile). */
  delayMs?: number;
  /** Never hedge sooner than this, ms. Default 1. */
  minDelayMs?: number;
  /** Successful attempts recorded before percentile hedging starts. Default 20. */
  minSamples?: number;
}

/**
 * Options of {@linkcode ClusterClient}. Every field has a documented default.
 *
 * @example
 * ```ts
 * import { ClusterClient, type ClusterClientOptions, type WorkerRegistry } from "@rpcnet/cluster";
 *
 * declare const workers: WorkerRegistry;
 * const options: ClusterClientOptions = {
 *   defaultFilter: "role=worker",
 *   defaultTimeoutMs: 2000,
 *   perTryTimeoutMs: 300, // an idempotent call moves on from a worker after 300 ms…
 *   hedging: { percentile: 95 }, // …and is hedged once it is slower than 95 % of recent calls
 *   retryBudget: { percentCanRetry: 0.1 }, // failovers and hedges: at most 10 % extra load
 *   outlier: { consecutiveFailures: 3, baseEjectionMs: 2000 },
 * };
 * const client = new ClusterClient(workers, options);
 * ```
 */
export interface ClusterClientOptions {
  /** Filter for calls that give none. Default: the registry's default filter. */
  defaultFilter?: FilterInput;
  /** Timeout of calls that give none, ms. Default: none (the call waits for its worker). */
  defaultTimeoutMs?: number;
  /** Most attempts of one call, failovers and hedges included (first try included). Default 3. */
  maxAttempts?: number;
  /**
   * Longest one attempt of an idempotent call may take before it is abandoned (cancelled on the
   * worker) and the call fails over to another worker, ms (Envoy's `per_try_timeout`). A call's
   * own deadline still bounds the whole call. Default: none (an attempt may use the whole
   * deadline).
   */
  perTryTimeoutMs?: number;
  /** Hedging of idempotent calls. Default: off. */
  hedging?: HedgingOptions;
  /** Retry budget (Finagle defaults: 20 % of calls + 10/s over 10 s). Failovers and hedges spend it. */
  retryBudget?: RetryBudgetOptions;
  /** Outlier ejection (default: 5 consecutive failures, 1 s back-off doubling to 30 s). */
  outlier?: OutlierOptions;
  /**
   * Error codes that count as a worker failure for ejection and the balancer's outcome.
   * Default `["unavailable", "resource_exhausted", "internal"]`. Per-try timeouts and rejected
   * secrets always count.
   */
  failureCodes?: readonly RpcErrorCode[];
  /** Pooled connections unused this long are closed, ms. Default 30 000. */
  idleTimeoutMs?: number;
  /** Connect timeout to a worker, ms. Default 3000. */
  connectTimeoutMs?: number;
  /**
   * While calls are outstanding on a pooled connection and no answer has come back on it for
   * this long, probe it, ms; 0 turns probing off. Default 500.
   */
  livenessProbeAfterMs?: number;
  /**
   * A probe unanswered this long means the worker process is gone (killed, or replaced by a new
   * process at the same address): the connection is evicted and its calls fail with
   * `unavailable` (idempotent ones fail over), ms. Default 750. A worker whose event loop is
   * blocked longer than `livenessProbeAfterMs + livenessProbeTimeoutMs` while calls are
   * outstanding is treated as gone: raise both for handlers that block that long.
   */
  livenessProbeTimeoutMs?: number;
  /**
   * Most entries in `stats().perWorker`; departed workers are pruned as they leave or fail, and
   * past this bound entries of workers no longer selectable are dropped. Default 1024.
   */
  maxWorkerStats?: number;
  /** Development CA the workers' certificates come from. Default: `defaultDevCa()`. */
  devCa?: DevCa;
  /** PEM CA certificates to trust instead of a development CA. */
  caCerts?: string[];
  /** Name checked against worker certificates. Default: the worker's host. */
  serverName?: string;
  /** Cluster secret the workers require. */
  secret?: string | Uint8Array;
  /** Unary lanes per connection. Default: the RpcClient default. */
  lanes?: number;
  /**
   * Send small unary calls over a TCP lane to workers whose server offers them (`RpcClient`
   * option `tcpLanes`; `NodeOptions.tcpLanes` turns it on for both sides). Default `false`.
   */
  tcpLanes?: boolean;
  /**
   * Connect to every worker through one client `QuicEndpoint` (per address family) instead of
   * one per connection: one UDP socket and one QUIC driver for the pool, less CPU per call, and
   * one session-ticket store for 0-RTT reconnects. Default `true`.
   */
  shareEndpoint?: boolean;
  /** Clock of the balancer's ejections, ms. Default `performance.now` (read once per burst). */
  now?: () => number;
  /** Replaces how connections are opened (tests, custom transports). */
  connect?: Connector;
  /**
   * Middleware around `callWorker`, first outermost (default: none). More can be added with
   * `use()`.
   */
  interceptors?: readonly ClientInterceptor[];
}

/**
 * Options of one {@linkcode ClusterClient.callWorker}.
 *
 * @example
 * ```ts
 * import type { CallContext, ClusterClient } from "@rpcnet/cluster";
 *
 * declare const client: ClusterClient;
 * declare const ctx: CallContext; // of the incoming call this one serves
 * const price = await client.callWorker("quote", { sku: "A-1" }, {
 *   filter: "role=pricing,zone in (eu-1,eu-2)",
 *   deadline: ctx.deadline, // never outlive the caller
 *   signal: ctx.signal, // nor go on when it cancels
 *   idempotent: true, // may fail over and be hedged
 *   key: "A-1", // the same worker for the same SKU (consistent_hash strategy)
 *   meta: { "request-id": ctx.meta["request-id"] ?? crypto.randomUUID() },
 * });
 * ```
 */
export interface WorkerCallOptions {
  /** Which workers may serve the call. Default: the client's default filter. */
  filter?: FilterInput;
  /** Deadline relative to now, ms, across every attempt. */
  timeoutMs?: number;
  /** Absolute deadline (epoch ms), e.g. an incoming call's `ctx.deadline`; the earlier one wins. */
  deadline?: number;
  /**
   * Safe to run twice: `unavailable` and per-try timeouts fail over to another worker, and the
   * call may be hedged. Default `false`.
   */
  idempotent?: boolean;
  /** Per-try timeout of this (idempotent) call, ms. Default: the client's `perTryTimeoutMs`. */
  perTryTimeoutMs?: number;
  /** Hedge this idempotent call when the client has `hedging` configured. Default `true`. */
  hedge?: boolean;
  /** Affinity key for the `consistent_hash` strategy. */
  key?: string;
  /** Cancels the call. */
  signal?: AbortSignal;
  /** Metadata for the handler. */
  meta?: Record<string, string>;
  /**
   * Resolve with the worker's response as an `EncodedPayload` (wire bytes, not decoded), as
   * `RpcClient.call` does with `encoded` (default `false`).
   */
  encoded?: boolean;
}

/** Options of {@linkcode ClusterClient.callAll}. */
export interface CallAllOptions {
  /** Which workers to call. Default: the client's default filter. */
  filter?: FilterInput;
  /** Deadline relative to now, ms, per worker call. */
  timeoutMs?: number;
  /** Absolute deadline (epoch ms). */
  deadline?: number;
  /** Cancels every call. */
  signal?: AbortSignal;
  /** Metadata for the handlers. */
  meta?: Record<string, string>;
}

/** Options of the streaming calls of {@linkcode ClusterClient}. */
export interface WorkerStreamOptions {
  /** Which workers may serve the stream. */
  filter?: FilterInput;
  /** Deadline relative to now, ms, for the whole stream. */
  timeoutMs?: number;
  /** Absolute deadline (epoch ms). */
  deadline?: number;
  /** Affinity key for the `consistent_hash` strategy. */
  key?: string;
  /** Cancels the stream. */
  signal?: AbortSignal;
  /** Metadata for the handler. */
  meta?: Record<string, string>;
}

/** One worker's outcome in {@linkcode ClusterClient.callAll}. */
export type CallAllResult<T> =
  | { readonly worker: Worker; readonly ok: true; readonly value: T }
  | { readonly worker: Worker; readonly ok: false; readonly error: RpcError };

/** Per-worker counters of a {@linkcode ClusterClient}. */
export interface WorkerCallStats {
  /** Attempts sent to the worker. */
  calls: number;
  /** Attempts that failed with a worker-failure code. */
  failures: number;
  /** Attempts in flight now. */
  active: number;
  /** Milliseconds spent in finished attempts (their sum; mean latency = Δtotal / Δcalls). */
  totalMs: number;
}

/** Counters of a {@linkcode ClusterClient}. */
export interface ClusterClientStats {
  /** Calls made (callWorker, each callAll target, streams), not counting retries. */
  calls: number;
  /** Calls that ended in an error. */
  failed: number;
  /** Failover attempts made (after an error or a per-try timeout; hedges not included). */
  retries: number;
  /** Failovers refused because the retry budget was spent. */
  budgetExhausted: number;
  /** Attempts abandoned at their per-try timeout. */
  perTryTimeouts: number;
  /** Hedged attempts sent. */
  hedges: number;
  /** Calls answered by their hedged attempt. */
  hedgeWins: number;
  /** Hedges not sent because the retry budget was spent. */
  hedgeBudgetExhausted: number;
  /** Attempts whose worker rejected this client's secret (each failed over, the worker ejected). */
  authFailures: number;
  /** Outlier ejections (all causes). */
  ejections: number;
  /** Ejections caused by a rejected secret. */
  authEjections: number;
  /** Pooled connections open now. */
  connections: number;
  /** Connections evicted: their worker failed or left, or a liveness probe went unanswered. */
  evictions: number;
  /** Liveness probes sent on connections with calls outstanding and no recent answer. */
  probes: number;
  /** Connections evicted because a liveness probe went unanswered. */
  probeFailures: number;
  /** Entries removed from `perWorker` (departed workers). */
  workerStatsPruned: number;
  /** Attempts per worker id (workers that left or failed are pruned). */
  perWorker: Record<string, WorkerCallStats>;
}

const DEFAULT_FAILURE_CODES: readonly RpcErrorCode[] = [
  "unavailable",
  "resource_exhausted",
  "internal",
];

const GONE_EVENTS: ClusterEventType[] = ["NodeFailed", "NodeLeft"];

function toRpcError(e: unknown): RpcError {
  if (e instanceof RpcError) return e;
  return new RpcError("internal", String(e instanceof Error ? e.message : e), { cause: e });
}

/**
 * A failed attempt's promise: rejected, or with `onError` (failover) what that makes of it, in
 * the attempt's own handler: no second promise and microtask per call to catch it.
 */
function failWith<T>(onError: ((err: unknown) => Promise<T>) | undefined, e: unknown): Promise<T> {
  return onError === undefined ? Promise.reject(e) : onError(e);
}

function deadlineOf(
  timeoutMs: number | undefined,
  deadline: number | undefined,
  now: number,
): number | undefined {
  if (timeoutMs !== undefined) checkDurationMs("timeoutMs", timeoutMs, 0);
  if (deadline !== undefined && (typeof deadline !== "number" || Number.isNaN(deadline))) {
    throw invalidOption("deadline", "an epoch time in milliseconds", deadline);
  }
  const fromTimeout = timeoutMs === undefined ? undefined : now + timeoutMs;
  if (fromTimeout === undefined) return deadline;
  if (deadline === undefined) return fromTimeout;
  return Math.min(fromTimeout, deadline);
}

function checkFailureCodes(v: unknown): readonly RpcErrorCode[] {
  if (v === undefined) return DEFAULT_FAILURE_CODES;
  if (!Array.isArray(v)) throw invalidOption("failureCodes", "an array of error codes", v);
  v.forEach((c, i) => {
    if (!RPC_ERROR_CODES.includes(c)) {
      throw invalidOption(`failureCodes[${i}]`, `one of ${RPC_ERROR_CODES.join(", ")}`, c);
    }
  });
  return v;
}

function checkFunction(name: string, v: unknown): void {
  if (v !== undefined && typeof v !== "function") throw invalidOption(name, "a function", v);
}

interface Hedging {
  percentile: number;
  delayMs: number | undefined;
  minDelayMs: number;
  minSamples: number;
}

function checkHedging(v: unknown): Hedging | undefined {
  if (v === undefined) return undefined;
  const o = checkPlainObject("hedging", v);
  const percentile = checkNumber("hedging.percentile", o.percentile, 95, 0, 100);
  if (percentile === 0 || percentile === 100) {
    throw invalidOption("hedging.percentile", "between 0 and 100 (exclusive)", percentile);
  }
  return {
    percentile,
    delayMs: o.delayMs === undefined ? undefined : checkDurationMs("hedging.delayMs", o.delayMs, 0),
    minDelayMs: checkDurationMs("hedging.minDelayMs", o.minDelayMs, 1),
    minSamples: checkInt("hedging.minSamples", o.minSamples, 20, 1, 100_000),
  };
}

/** The outcome of one attempt of a hedged call. */
type Outcome<T> = { i: number; ok: true; value: T } | { i: number; ok: false; e: RpcError };

/** Per-attempt options handed to the RPC client. */
interface AttemptOptions {
  signal?: AbortSignal;
  meta?: Record<string, string>;
  encoded?: boolean;
}

/**
 * Load-balanced, failure-aware calls to the workers of a cluster.
 *
 * @example
 * ```ts
 * import { ClusterClient, type ClusterMembership, WorkerRegistry } from "@rpcnet/cluster";
 *
 * declare const cluster: ClusterMembership; // started and joined
 * const workers = new WorkerRegistry(cluster, { strategy: "p2c_peak_ewma" });
 * const client = new ClusterClient(workers, { perTryTimeoutMs: 500 });
 * const result = await client.callWorker("compute", { n: 42 }, {
 *   filter: "role=worker",
 *   timeoutMs: 2000,
 *   idempotent: true,
 * });
 * console.log(result);
 * await client.close();
 * ```
 */
export class ClusterClient {
  /** The registry workers are selected from. */
  readonly registry: WorkerRegistry;

  #pool: ConnectionPool;
  #budget: RetryBudget;
  #outliers: OutlierDetector;
  #failureCodes: ReadonlySet<RpcErrorCode>;
  #defaultFilter: FilterInput;
  #defaultTimeoutMs: number | undefined;
  #maxAttempts: number;
  #perTryTimeoutMs: number | undefined;
  #hedging: Hedging | undefined;
  #latencies: LatencyWindow | undefined;
  #maxWorkerStats: number;
  #budgetOnPerfClock: boolean;
  #closed = false;
  #stats = {
    calls: 0,
    failed: 0,
    retries: 0,
    budgetExhausted: 0,
    perTryTimeouts: 0,
    hedges: 0,
    hedgeWins: 0,
    hedgeBudgetExhausted: 0,
    authFailures: 0,
    authEjections: 0,
    workerStatsPruned: 0,
  };
  #perWorker = new Map<string, WorkerCallStats>();
  #interceptors: ClientInterceptor[] = [];
  #chain: ClientNext | undefined;
  /** Ids that left or failed while attempts to them were in flight: pruned when those end. */
  #departing = new Set<string>();
  /** Errors of attempts that never reached a handler: safe to try elsewhere for any call. */
  #unsent = new WeakSet<RpcError>();
  /** Errors of attempts abandoned at their per-try timeout. */
  #perTryExpired = new WeakSet<RpcError>();
  #onGone = (e: CustomEvent<ClusterEvent>): void => {
    const ev = e.detail;
    if (!("node" in ev)) return;
    const id = ev.node.id;
    const why = `worker ${id} ${ev.type}`;
    // A failed worker will never answer: fail its calls now so idempotent ones fail over. A
    // leaving one drains its calls first, so its connection closes when they are done. Only
    // the connections opened for this member id go: a new process may hold its address.
    if (ev.type === "NodeFailed") this.#pool.evict(id, why);
    else this.#pool.retire(id, why);
    this.#outliers.forget(id);
    this.#pruneWorkerStats(id);
  };

  /**
   * Creates a client over `registry`.
   *
   * @param registry where workers come from; its balancer receives each call's load and outcome
   * @param options defaults, retry budget, outlier ejection, connection settings
   * @throws {RpcError} `invalid_argument` naming the first bad option
   */
  constructor(registry: WorkerRegistry, options: ClusterClientOptions = {}) {
    const o = checkPlainObject("ClusterClient options", options) as ClusterClientOptions;
    this.registry = registry;
    if (o.defaultFilter !== undefined) checkFilter("defaultFilter", o.defaultFilter);
    this.#defaultFilter = o.defaultFilter;
    this.#defaultTimeoutMs = o.defaultTimeoutMs === undefined
      ? undefined
      : checkDurationMs("defaultTimeoutMs", o.defaultTimeoutMs, 0);
    this.#maxAttempts = checkInt("maxAttempts", o.maxAttempts, 3, 1, 100);
    this.#perTryTimeoutMs = o.perTryTimeoutMs === undefined
      ? undefined
      : checkDurationMs("perTryTimeoutMs", o.perTryTimeoutMs, 0, 1);
    this.#hedging = checkHedging(o.hedging);
    if (this.#hedging) this.#latencies = new LatencyWindow();
    this.#failureCodes = new Set(checkFailureCodes(o.failureCodes));
    this.#maxWorkerStats = checkInt("maxWorkerStats", o.maxWorkerStats, 1024, 1, 1 << 24);
    this.#budget = new RetryBudget(
      o.retryBudget === undefined ? {} : checkPlainObject("retryBudget", o.retryBudget),
      "retryBudget",
    );
    this.#budgetOnPerfClock = o.retryBudget?.now === undefined;
    checkFunction("now", o.now);
    checkFunction("connect", o.connect);
    const now = o.now ?? tickNow;
    this.#outliers = new OutlierDetector(
      registry.balancer,
      now,
      o.outlier === undefined ? {} : o.outlier,
      "outlier",
    );
    const connectTimeoutMs = checkDurationMs("connectTimeoutMs", o.connectTimeoutMs, 3000, 1);
    const idleTimeoutMs = checkDurationMs("idleTimeoutMs", o.idleTimeoutMs, 30_000, 1);
    const probeAfterMs = checkDurationMs("livenessProbeAfterMs", o.livenessProbeAfterMs, 500, 0);
    const probeTimeoutMs = checkDurationMs(
      "livenessProbeTimeoutMs",
      o.livenessProbeTimeoutMs,
      750,
      1,
    );
    const shareEndpoint = checkBoolean("shareEndpoint", o.shareEndpoint, true);
    if (o.lanes !== undefined) checkInt("lanes", o.lanes, 4, 1, 64);
    const tcpLanes = checkBoolean("tcpLanes", o.tcpLanes, false);
    if (
      o.secret !== undefined && typeof o.secret !== "string" && !(o.secret instanceof Uint8Array)
    ) {
      throw invalidOption("secret", "a string or a Uint8Array", o.secret);
    }
    const connect: Connector = o.connect ??
      (async (hostname, port, endpoint) =>
        await RpcClient.connect({
          hostname,
          port,
          devCa: o.devCa,
          caCerts: o.caCerts,
          serverName: o.serverName,
          secret: o.secret,
          lanes: o.lanes,
          tcpLanes,
          connectTimeoutMs,
          endpoint,
        }));
    this.#pool = new ConnectionPool({
      connect,
      idleTimeoutMs,
      shareEndpoint,
      probeAfterMs,
      probeTimeoutMs,
    });
    for (const t of GONE_EVENTS) registry.membership.addEventListener(t, this.#onGone);
    for (const i of options.interceptors ?? []) this.use(i);
  }

  /**
   * Adds an interceptor of `callWorker` inside those already installed.
   *
   * @throws {RpcError} `invalid_argument` when `interceptor` is not a function
   */
  use(interceptor: ClientInterceptor): this {
    if (typeof interceptor !== "function") {
      throw new RpcError("invalid_argument", "interceptors: each interceptor must be a function");
    }
    this.#interceptors.push(interceptor);
    this.#chain = composeClientInterceptors(
      this.#interceptors,
      (c) => this.#callWorker(c.method, c.request, c.options),
    );
    return this;
  }

  /**
   * Calls `method` on one worker chosen by the balancer among those passing the filter.
   *
   * @returns the worker's response
   * @throws {RpcError} `unavailable` naming the filter when no worker matches, or when the
   *   chosen worker is unreachable and the call is not idempotent (or failover is exhausted);
   *   `deadline_exceeded`, `cancelled`, or whatever the handler threw; `invalid_argument` for
   *   a bad option
   */
  callWorker<T = unknown>(
    method: string,
    request: unknown,
    options: WorkerCallOptions = {},
  ): Promise<T> {
    const chain = this.#chain;
    if (chain === undefined) return this.#callWorker<T>(method, request, options);
    return chain({ method, request, options }) as Promise<T>;
  }

  // Not `async`, and no `catch` of its own: the first attempt's handlers hand a failure to the
  // failover loop (an async frame and a promise with a microtask hop per call were visible in
  // the caller's CPU profile).
  #callWorker<T>(
    method: string,
    request: unknown,
    options: WorkerCallOptions,
  ): Promise<T> {
    let filter: FilterInput, deadline: number | undefined, perTry: number | undefined;
    let wall: number, t0: number, worker: Worker;
    const idempotent = options.idempotent === true;
    try {
      this.#checkOpen();
      filter = options.filter ?? this.#defaultFilter;
      // Clock reads are a large part of this layer's cost: read each clock once per call.
      const timeoutMs = options.timeoutMs ?? this.#defaultTimeoutMs;
      wall = timeoutMs === undefined && options.deadline === undefined ? 0 : Date.now();
      deadline = deadlineOf(timeoutMs, options.deadline, wall);
      if (idempotent) {
        perTry = options.perTryTimeoutMs === undefined
          ? this.#perTryTimeoutMs
          : checkDurationMs("perTryTimeoutMs", options.perTryTimeoutMs, 0, 1);
      }
      t0 = tickNow();
      this.#stats.calls++;
      if (this.#budgetOnPerfClock) this.#budget.deposit(t0);
      else this.#budget.deposit();
      worker = this.registry.selectWorker(
        filter,
        options.key === undefined ? undefined : { key: options.key },
      );
    } catch (e) {
      return Promise.reject(e);
    }
    if (idempotent && this.#hedging !== undefined && options.hedge !== false) {
      return this.#callHedged<T>(method, request, options, filter, deadline, perTry, worker);
    }
    const failover = (err: unknown) =>
      this.#failover<T>(err, worker, filter, method, request, options, deadline, perTry);
    try {
      return this.#attemptWithin<T>(
        worker,
        filter,
        method,
        request,
        options,
        deadline,
        perTry,
        wall,
        t0,
        failover,
      );
    } catch (e) {
      return failover(e);
    }
  }

  /** After a failed first attempt: tries other workers while the error and budget allow. */
  async #failover<T>(
    err: unknown,
    worker: Worker,
    filter: FilterInput,
    method: string,
    request: unknown,
    options: WorkerCallOptions,
    deadline: number | undefined,
    perTry: number | undefined,
  ): Promise<T> {
    const idempotent = options.idempotent === true;
    let tried: Set<string> | undefined;
    for (let attempt = 1;; attempt++) {
      const e = toRpcError(err);
      if (!this.#retryable(e, idempotent)) throw this.#fail(e);
      (tried ??= new Set()).add(worker.id);
      worker = this.#nextWorker(e, attempt, deadline, filter, options.key, tried);
      this.#stats.retries++;
      try {
        return await this.#attemptWithin<T>(
          worker,
          filter,
          method,
          request,
          options,
          deadline,
          perTry,
          Date.now(),
          tickNow(),
        );
      } catch (next) {
        err = next;
      }
    }
  }

  /** One attempt bounded by the call's deadline (as of `wall`) or its per-try timeout. */
  #attemptWithin<T>(
    worker: Worker,
    filter: FilterInput,
    method: string,
    request: unknown,
    options: WorkerCallOptions,
    deadline: number | undefined,
    perTry: number | undefined,
    wall: number,
    t0: number,
    onError?: (err: unknown) => Promise<T>,
  ): Promise<T> {
    const remaining = deadline === undefined ? undefined : deadline - wall;
    const capped = perTry !== undefined && (remaining === undefined || perTry < remaining);
    return this.#attempt<T>(
      worker,
      filter,
      method,
      request,
      capped ? perTry : remaining,
      capped,
      options,
      t0,
      onError,
    );
  }

  /**
   * Calls `method` on every worker passing the filter, concurrently, without failover.
   *
   * @returns one result per worker (sorted by worker id), successful or not
   * @throws {RpcError} `unavailable` naming the filter when no worker matches
   */
  async callAll<T = unknown>(
    method: string,
    request: unknown,
    options: CallAllOptions = {},
  ): Promise<CallAllResult<T>[]> {
    this.#checkOpen();
    const filter = options.filter ?? this.#defaultFilter;
    const workers = this.registry.workers(filter);
    if (workers.length === 0) {
      throw new RpcError("unavailable", `no worker matches filter ${describeFilter(filter)}`);
    }
    const now = Date.now();
    const deadline = deadlineOf(options.timeoutMs ?? this.#defaultTimeoutMs, options.deadline, now);
    const remaining = deadline === undefined ? undefined : deadline - now;
    return await Promise.all(workers.map(async (worker): Promise<CallAllResult<T>> => {
      this.#stats.calls++;
      try {
        const value = await this.#attempt<T>(
          worker,
          filter,
          method,
          request,
          remaining,
          false,
          options,
          tickNow(),
        );
        return { worker, ok: true, value };
      } catch (err) {
        return { worker, ok: false, error: this.#fail(toRpcError(err)) };
      }
    }));
  }

  /**
   * A server-streaming call to one selected worker. The balancer counts the stream as one call
   * in flight until it ends; its outcome feeds the outlier detector like a unary call's.
   *
   * @throws {RpcError} `unavailable` naming the filter when no worker matches
   */
  async *serverStream<T = unknown>(
    method: string,
    request: unknown,
    options: WorkerStreamOptions = {},
  ): AsyncGenerator<T, void, undefined> {
    yield* this.#stream<T>(options, (c, o) => c.serverStream<T>(method, request, o));
  }

  /** A client-streaming call to one selected worker: many requests in, one response out. */
  async clientStream<T = unknown>(
    method: string,
    requests: AsyncIterable<unknown>,
    options: WorkerStreamOptions = {},
  ): Promise<T> {
    for await (
      const v of this.#stream<T>(
        options,
        (c, o) => toIterable(c.clientStream<T>(method, requests, o)),
      )
    ) {
      return v;
    }
    throw new RpcError("internal", `client stream '${method}' ended without a response`);
  }

  /** A bidirectional-streaming call to one selected worker. */
  async *bidiStream<T = unknown>(
    method: string,
    requests: AsyncIterable<unknown>,
    options: WorkerStreamOptions = {},
  ): AsyncGenerator<T, void, undefined> {
    yield* this.#stream<T>(options, (c, o) => c.bidiStream<T>(method, requests, o));
  }

  /** Counters: calls, failures, retries, hedges, ejections, connections, attempts per worker. */
  stats(): ClusterClientStats {
    const perWorker: Record<string, WorkerCallStats> = {};
    for (const [id, s] of this.#perWorker) perWorker[id] = { ...s };
    return {
      ...this.#stats,
      ejections: this.#outliers.totalEjections,
      connections: this.#pool.size,
      evictions: this.#pool.evictions,
      probes: this.#pool.probes,
      probeFailures: this.#pool.probeFailures,
      perWorker,
    };
  }

  /** Closes every pooled connection and stops listening to membership. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of GONE_EVENTS) this.registry.membership.removeEventListener(t, this.#onGone);
    await this.#pool.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new RpcError("unavailable", "cluster client is closed");
  }

  #fail(e: RpcError): RpcError {
    this.#stats.failed++;
    return e;
  }

  #wrap(e: RpcError, why: string): RpcError {
    const w = new RpcError(e.code, `${e.message} (${why})`, { cause: e });
    return w;
  }

  /** Whether a failed attempt may be tried on another worker. */
  #retryable(e: RpcError, idempotent: boolean): boolean {
    if (this.#unsent.has(e)) return true;
    return idempotent && (e.code === "unavailable" || this.#perTryExpired.has(e));
  }

  /**
   * The worker a failed attempt fails over to, the retry budget spent; throws (counted as a
   * failed call) when the attempts, the deadline, the candidates or the budget are exhausted.
   */
  #nextWorker(
    e: RpcError,
    attempts: number,
    deadline: number | undefined,
    filter: FilterInput,
    key: string | undefined,
    tried: ReadonlySet<string>,
  ): Worker {
    if (attempts >= this.#maxAttempts) {
      throw this.#fail(this.#wrap(e, `failover gave up after ${attempts} attempts`));
    }
    if (deadline !== undefined && Date.now() >= deadline) {
      throw this.#fail(new RpcError("deadline_exceeded", `deadline passed during failover`));
    }
    const next = this.registry.trySelectWorker(filter, { key, exclude: tried });
    if (!next) {
      throw this.#fail(this.#wrap(
        e,
        `no other worker matching filter ${describeFilter(filter)} to fail over to`,
      ));
    }
    if (!this.#budget.tryWithdraw()) {
      this.#stats.budgetExhausted++;
      throw this.#fail(this.#wrap(e, "retry budget exhausted"));
    }
    return next;
  }

  /** The delay before a hedge, or `undefined` when the call should not be hedged (yet). */
  #hedgeDelay(): number | undefined {
    const h = this.#hedging!;
    if (h.delayMs !== undefined) return Math.max(h.minDelayMs, h.delayMs);
    const w = this.#latencies!;
    if (w.count < h.minSamples) return undefined;
    return Math.max(h.minDelayMs, w.percentile(h.percentile)!);
  }

  /**
   * An idempotent call with hedging: attempts race, the first answer wins, the rest are
   * cancelled. A failed attempt fails over as in `callWorker` once no other attempt is racing.
   */
  async #callHedged<T>(
    method: string,
    request: unknown,
    options: WorkerCallOptions,
    filter: FilterInput,
    deadline: number | undefined,
    perTry: number | undefined,
    first: Worker,
  ): Promise<T> {
    const tried = new Set<string>();
    const hedgeAttempts = new Set<number>();
    const running = new Map<number, { abort: AbortController; p: Promise<Outcome<T>> }>();
    const signal = options.signal;
    let attempts = 0;
    let hedgeAllowed = true;
    const launch = (worker: Worker) => {
      const i = attempts++;
      tried.add(worker.id);
      const abort = new AbortController();
      const onAbort = () => abort.abort();
      if (signal?.aborted) abort.abort();
      else signal?.addEventListener("abort", onAbort, { once: true });
      const remaining = deadline === undefined ? undefined : deadline - Date.now();
      const capped = perTry !== undefined && (remaining === undefined || perTry < remaining);
      const attemptOptions = { signal: abort.signal, meta: options.meta, encoded: options.encoded };
      const p = this.#attempt<T>(
        worker,
        filter,
        method,
        request,
        capped ? perTry : remaining,
        capped,
        attemptOptions,
        tickNow(),
      ).then(
        (value): Outcome<T> => ({ i, ok: true, value }),
        (e): Outcome<T> => ({ i, ok: false, e: toRpcError(e) }),
      ).finally(() => signal?.removeEventListener("abort", onAbort));
      running.set(i, { abort, p });
    };
    launch(first);
    try {
      for (;;) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const racers: Promise<Outcome<T> | "hedge">[] = [...running.values()].map((r) => r.p);
        const delay = hedgeAllowed && running.size === 1 && attempts < this.#maxAttempts
          ? this.#hedgeDelay()
          : undefined;
        if (delay !== undefined) {
          racers.push(new Promise((r) => (timer = setTimeout(() => r("hedge"), delay))));
        }
        const out = await Promise.race(racers);
        clearTimeout(timer);
        if (out === "hedge") {
          const next = deadline !== undefined && Date.now() >= deadline
            ? undefined
            : this.registry.trySelectWorker(filter, { key: options.key, exclude: tried });
          if (!next) {
            hedgeAllowed = false;
          } else if (!this.#budget.tryWithdraw()) {
            this.#stats.hedgeBudgetExhausted++;
            hedgeAllowed = false;
          } else {
            this.#stats.hedges++;
            hedgeAttempts.add(attempts);
            launch(next);
          }
          continue;
        }
        running.delete(out.i);
        if (out.ok) {
          if (hedgeAttempts.has(out.i)) this.#stats.hedgeWins++;
          return out.value;
        }
        if (!this.#retryable(out.e, true)) throw this.#fail(out.e);
        if (running.size > 0) continue; // another attempt may still answer
        const next = this.#nextWorker(out.e, attempts, deadline, filter, options.key, tried);
        this.#stats.retries++;
        launch(next);
      }
    } finally {
      for (const r of running.values()) r.abort.abort(); // the losers
    }
  }

  #workerStats(id: string): WorkerCallStats {
    let s = this.#perWorker.get(id);
    if (!s) {
      if (this.#perWorker.size >= this.#maxWorkerStats) this.#boundWorkerStats();
      this.#perWorker.set(id, s = { calls: 0, failures: 0, active: 0, totalMs: 0 });
    }
    return s;
  }

  /** Drops the counters of a worker that left or failed (once its attempts have ended). */
  #pruneWorkerStats(id: string): void {
    const s = this.#perWorker.get(id);
    if (!s) return;
    if (s.active > 0) {
      this.#departing.add(id);
      return;
    }
    this.#perWorker.delete(id);
    this.#departing.delete(id);
    this.#stats.workerStatsPruned++;
  }

  /** Past `maxWorkerStats`: drop idle entries of workers no longer selectable. */
  #boundWorkerStats(): void {
    const live = new Set(this.registry.workers(undefined).map((w) => w.id));
    for (const [id, s] of this.#perWorker) {
      if (s.active === 0 && !live.has(id)) {
        this.#perWorker.delete(id);
        this.#stats.workerStatsPruned++;
      }
    }
  }

  /**
   * One attempt on one worker. Not `async`: on the hot path (pooled connection open) it adds a
   * single `then` to the RPC call instead of async frames and extra microtask hops.
   *
   * @param timeoutMs the attempt's timeout (the remaining deadline, or the per-try timeout)
   * @param perTry whether `timeoutMs` is the per-try timeout (expiry fails over)
   */
  #attempt<T>(
    worker: Worker,
    filter: FilterInput,
    method: string,
    request: unknown,
    timeoutMs: number | undefined,
    perTry: boolean,
    options: AttemptOptions,
    t0: number,
    onError?: (err: unknown) => Promise<T>,
  ): Promise<T> {
    const ws = this.#begin(worker);
    if (timeoutMs !== undefined && timeoutMs <= 0) {
      const e = new RpcError("deadline_exceeded", `deadline passed before calling '${method}'`);
      return failWith(onError, this.#settle(worker, ws, filter, undefined, t0, e, false, perTry));
    }
    const callOptions = {
      timeoutMs,
      signal: options.signal,
      meta: options.meta,
      encoded: options.encoded,
    };
    const conn = this.#pool.tryAcquire(worker.id, worker.addr, t0);
    if (conn) {
      // An evicted connection is closed, which fails its pending calls with `unavailable`.
      return conn.client.call<T>(method, request, callOptions).then(
        (value) => {
          this.#settle(worker, ws, filter, conn, t0, undefined, true, perTry);
          return value;
        },
        (err) => failWith(onError, this.#settle(worker, ws, filter, conn, t0, err, true, perTry)),
      );
    }
    // Connecting: bounded by the attempt's timeout, and not sent until connected.
    return this.#acquire(worker, timeoutMs, options.signal).then(
      (c) =>
        c.client.call<T>(method, request, {
          ...callOptions,
          timeoutMs: timeoutMs === undefined
            ? undefined
            : Math.max(1, timeoutMs - (tickNow() - t0)),
        }).then(
          (value) => {
            this.#settle(worker, ws, filter, c, t0, undefined, true, perTry);
            return value;
          },
          (err) => failWith(onError, this.#settle(worker, ws, filter, c, t0, err, true, perTry)),
        ),
      (err) =>
        failWith(onError, this.#settle(worker, ws, filter, undefined, t0, err, false, perTry)),
    );
  }

  /** A pooled connection to `worker`, opening it when needed, within `timeoutMs`. */
  #acquire(
    worker: Worker,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<PooledConnection> {
    const acquiring = this.#pool.acquire(worker.id, worker.addr);
    if (timeoutMs === undefined && signal === undefined) return acquiring;
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let done = false;
      const onAbort = () => finish(new RpcError("cancelled", "call cancelled while connecting"));
      const finish = (err: RpcError | undefined, c?: PooledConnection) => {
        if (done) {
          // Timed out or cancelled first: hand the late connection back.
          if (c) this.#pool.release(c, tickNow(), false);
          return;
        }
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(c!);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            finish(
              new RpcError(
                "deadline_exceeded",
                `no connection to ${worker.id} at ${worker.addr} within ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
      acquiring.then((c) => finish(undefined, c), (e) => finish(toRpcError(e)));
    });
  }

  /** An attempt begins: counters and the balancer's load. */
  #begin(worker: Worker): WorkerCallStats {
    const ws = this.#workerStats(worker.id);
    ws.calls++;
    ws.active++;
    this.registry.balancer.start(worker.id);
    return ws;
  }

  /**
   * Books an attempt's outcome — pool, balancer, outlier detector, counters — and returns the
   * error the caller sees, classified for failover.
   *
   * @param sent whether the request left (false: connecting failed, no handler ran)
   * @param perTry whether the attempt's timeout was the per-try timeout
   */
  #settle(
    worker: Worker,
    ws: WorkerCallStats,
    filter: FilterInput,
    conn: PooledConnection | undefined,
    t0: number,
    err: unknown,
    sent: boolean,
    perTry: boolean,
  ): RpcError | undefined {
    const end = tickNow();
    ws.totalMs += end - t0;
    if (--ws.active === 0 && this.#departing.has(worker.id)) this.#pruneWorkerStats(worker.id);
    let e: RpcError | undefined;
    let failure = false;
    let auth = false;
    if (err !== undefined) {
      e = toRpcError(err);
      if (!sent) {
        // Connecting failed: no handler ran, so any call may try another worker. A rejected
        // secret will be rejected again: eject the worker at once.
        auth = e.code === "unauthenticated";
        if (auth) {
          this.#stats.authFailures++;
          e = new RpcError(
            "unauthenticated",
            `worker ${worker.id} at ${worker.addr} rejected this client's secret: ${e.message}`,
            { cause: e },
          );
        }
        this.#unsent.add(e);
      } else if (conn?.evicted && e.code !== "deadline_exceeded") {
        // The worker left or failed (or stopped answering probes) while the call was in
        // flight: retryable elsewhere.
        e = new RpcError(
          "unavailable",
          `${e.message} (connection to ${worker.id} evicted: ${conn.evictedReason})`,
          { cause: e },
        );
      }
      if (perTry && e.code === "deadline_exceeded") {
        this.#stats.perTryTimeouts++;
        e = new RpcError(
          "deadline_exceeded",
          `${e.message} (per-try timeout on worker ${worker.id})`,
          { cause: e },
        );
        this.#perTryExpired.add(e);
        if (!sent) this.#unsent.add(e);
        failure = true;
      }
      failure ||= auth || this.#failureCodes.has(e.code);
    }
    if (conn) {
      const heard = err === undefined ||
        (e!.code !== "deadline_exceeded" && e!.code !== "cancelled" && e!.code !== "unavailable");
      this.#pool.release(conn, end, heard);
    }
    this.registry.balancer.finish(worker.id, end - t0, !failure);
    if (failure) {
      ws.failures++;
      const pool = this.registry.workers(filter).length;
      if (auth) {
        if (this.#outliers.ejectNow(worker.id, pool) !== undefined) this.#stats.authEjections++;
      } else {
        this.#outliers.failure(worker.id, pool);
      }
    } else if (e?.code !== "cancelled") {
      // A cancelled attempt (the caller's, or a hedge's loser) says nothing about the worker.
      this.#outliers.success(worker.id);
      if (e === undefined) this.#latencies?.record(end - t0);
    }
    return e;
  }

  /** A streaming call: the same bookkeeping as a unary attempt, settled when the stream ends. */
  async *#stream<T>(
    options: WorkerStreamOptions,
    open: (
      client: RpcClient,
      o: { timeoutMs?: number; signal?: AbortSignal; meta?: Record<string, string> },
    ) => AsyncIterable<T>,
  ): AsyncGenerator<T, void, undefined> {
    this.#checkOpen();
    const filter = options.filter ?? this.#defaultFilter;
    const timeoutMs = options.timeoutMs ?? this.#defaultTimeoutMs;
    const wall = timeoutMs === undefined && options.deadline === undefined ? 0 : Date.now();
    const deadline = deadlineOf(timeoutMs, options.deadline, wall);
    this.#stats.calls++;
    const worker = this.registry.selectWorker(
      filter,
      options.key === undefined ? undefined : { key: options.key },
    );
    const t0 = tickNow();
    const ws = this.#begin(worker);
    let conn: PooledConnection | undefined;
    let sent = false;
    let error: unknown;
    let failed = false;
    try {
      conn = this.#pool.tryAcquire(worker.id, worker.addr, t0) ??
        await this.#acquire(
          worker,
          deadline === undefined ? undefined : deadline - Date.now(),
          options.signal,
        );
      sent = true;
      const remaining = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      const o = { timeoutMs: remaining, signal: options.signal, meta: options.meta };
      for await (const v of open(conn.client, o)) {
        this.#pool.heard(conn, tickNow());
        yield v;
      }
    } catch (err) {
      failed = true;
      error = err;
    } finally {
      const e = this.#settle(worker, ws, filter, conn, t0, failed ? error : undefined, sent, false);
      // deno-lint-ignore no-unsafe-finally
      if (e) throw this.#fail(e);
    }
  }
}

async function* toIterable<T>(p: Promise<T>): AsyncGenerator<T, void, undefined> {
  yield await p;
}
