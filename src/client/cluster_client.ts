/**
 * ClusterClient: load-balanced RPC to the workers a {@linkcode WorkerRegistry} selects.
 *
 * Every call: select a worker for the filter, take its pooled connection, tell the balancer the
 * call started, call with the remaining deadline, then report latency and outcome to the
 * balancer and the outlier detector. An idempotent call that fails with `unavailable` is retried
 * on a worker it has not tried yet, while the retry budget and the deadline allow.
 *
 * @module
 */

import { RpcError, type RpcErrorCode } from "../errors.ts";
import { RpcClient } from "../rpc/client.ts";
import type { DevCa } from "../rpc/certs.ts";
import type { ClusterEvent, ClusterEventType } from "../membership/types.ts";
import { describeFilter, type FilterInput } from "../registry/filter.ts";
import type { Worker, WorkerRegistry } from "../registry/worker_registry.ts";
import { ConnectionPool, type Connector, type PooledConnection } from "./pool.ts";
import { RetryBudget, type RetryBudgetOptions } from "./retry_budget.ts";
import { OutlierDetector, type OutlierOptions } from "./outlier.ts";
import { tickNow } from "./tick_clock.ts";
import { type ClientInterceptor, type ClientNext, composeClientInterceptors } from "./intercept.ts";

/** Options of {@linkcode ClusterClient}. Every field has a documented default. */
export interface ClusterClientOptions {
  /** Filter for calls that give none. Default: the registry's default filter. */
  defaultFilter?: FilterInput;
  /** Timeout of calls that give none, ms. Default: none (the call waits for its worker). */
  defaultTimeoutMs?: number;
  /** Most attempts of one idempotent call (first try included). Default 3. */
  maxAttempts?: number;
  /** Retry budget (Finagle defaults: 20 % of calls + 10/s over 10 s). */
  retryBudget?: RetryBudgetOptions;
  /** Outlier ejection (default: 5 consecutive failures, 1 s back-off doubling to 30 s). */
  outlier?: OutlierOptions;
  /** Error codes that count as a worker failure for ejection and the balancer's outcome. */
  failureCodes?: readonly RpcErrorCode[];
  /** Pooled connections unused this long are closed, ms. Default 30 000. */
  idleTimeoutMs?: number;
  /** Connect timeout to a worker, ms. Default 3000. */
  connectTimeoutMs?: number;
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
   * Connect to every worker through one client `QuicEndpoint` (per address family) instead of
   * one per connection: one UDP socket and one QUIC driver for the pool, less CPU per call, and
   * one session-ticket store for 0-RTT reconnects. Default `true`.
   */
  shareEndpoint?: boolean;
  /** Clock of the balancer's ejections, ms. Default `performance.now`. */
  now?: () => number;
  /** Replaces how connections are opened (tests, custom transports). */
  connect?: Connector;
  /**
   * Middleware around `callWorker`, first outermost (default: none). More can be added with
   * `use()`.
   */
  interceptors?: readonly ClientInterceptor[];
}

/** Options of one {@linkcode ClusterClient.callWorker}. */
export interface WorkerCallOptions {
  /** Which workers may serve the call. Default: the client's default filter. */
  filter?: FilterInput;
  /** Deadline relative to now, ms, across every attempt. */
  timeoutMs?: number;
  /** Absolute deadline (epoch ms), e.g. an incoming call's `ctx.deadline`; the earlier one wins. */
  deadline?: number;
  /** Safe to run twice: `unavailable` fails over to another worker. Default `false`. */
  idempotent?: boolean;
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
  /** Failover attempts made. */
  retries: number;
  /** Failovers refused because the retry budget was spent. */
  budgetExhausted: number;
  /** Outlier ejections. */
  ejections: number;
  /** Pooled connections open now. */
  connections: number;
  /** Connections evicted because their worker failed or left. */
  evictions: number;
  /** Attempts per worker id. */
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

function deadlineOf(
  timeoutMs: number | undefined,
  deadline: number | undefined,
  now: number,
): number | undefined {
  if (timeoutMs !== undefined && !(timeoutMs >= 0)) {
    throw new RpcError("invalid_argument", `timeoutMs must be >= 0, got ${timeoutMs}`);
  }
  const fromTimeout = timeoutMs === undefined ? undefined : now + timeoutMs;
  if (fromTimeout === undefined) return deadline;
  if (deadline === undefined) return fromTimeout;
  return Math.min(fromTimeout, deadline);
}

/**
 * Load-balanced, failure-aware calls to the workers of a cluster.
 *
 * @example
 * ```ts ignore
 * import { ClusterClient, WorkerRegistry } from "@rpcnet/cluster";
 *
 * const workers = new WorkerRegistry(cluster, { strategy: "p2c_peak_ewma" });
 * const client = new ClusterClient(workers);
 * const result = await client.callWorker("compute", { n: 42 }, {
 *   filter: "role=worker",
 *   timeoutMs: 2000,
 *   idempotent: true,
 * });
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
  #budgetOnPerfClock: boolean;
  #closed = false;
  #endpoints = new Map<"v4" | "v6", Deno.QuicEndpoint>();
  #stats = { calls: 0, failed: 0, retries: 0, budgetExhausted: 0 };
  #perWorker = new Map<string, WorkerCallStats>();
  #interceptors: ClientInterceptor[] = [];
  #chain: ClientNext | undefined;
  #onGone = (e: CustomEvent<ClusterEvent>): void => {
    const ev = e.detail;
    if (!("node" in ev)) return;
    const why = `worker ${ev.node.id} ${ev.type}`;
    // A failed worker will never answer: fail its calls now so idempotent ones fail over. A
    // leaving one drains its calls first, so its connection closes when they are done.
    if (ev.node.rpcAddr && ev.type === "NodeFailed") this.#pool.evict(ev.node.rpcAddr, why);
    else if (ev.node.rpcAddr) this.#pool.retire(ev.node.rpcAddr, why);
    this.#outliers.forget(ev.node.id);
  };

  /**
   * Creates a client over `registry`.
   *
   * @param registry where workers come from; its balancer receives each call's load and outcome
   * @param options defaults, retry budget, outlier ejection, connection settings
   * @throws {RpcError} `invalid_argument` for bad options
   */
  constructor(registry: WorkerRegistry, options: ClusterClientOptions = {}) {
    this.registry = registry;
    this.#defaultFilter = options.defaultFilter;
    this.#defaultTimeoutMs = options.defaultTimeoutMs;
    this.#maxAttempts = options.maxAttempts ?? 3;
    if (!Number.isInteger(this.#maxAttempts) || this.#maxAttempts < 1) {
      throw new RpcError("invalid_argument", `maxAttempts must be an integer >= 1`);
    }
    this.#failureCodes = new Set(options.failureCodes ?? DEFAULT_FAILURE_CODES);
    this.#budget = new RetryBudget(options.retryBudget);
    this.#budgetOnPerfClock = options.retryBudget?.now === undefined;
    const now = options.now ?? (() => performance.now());
    this.#outliers = new OutlierDetector(registry.balancer, now, options.outlier);
    const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    const share = options.shareEndpoint ?? true;
    const connect: Connector = options.connect ??
      (async (hostname, port) =>
        await RpcClient.connect({
          hostname,
          port,
          devCa: options.devCa,
          caCerts: options.caCerts,
          serverName: options.serverName,
          secret: options.secret,
          lanes: options.lanes,
          connectTimeoutMs,
          endpoint: share ? this.#endpointFor(hostname) : undefined,
        }));
    this.#pool = new ConnectionPool(connect, options.idleTimeoutMs ?? 30_000);
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
   *   `deadline_exceeded`, `cancelled`, or whatever the handler threw
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

  async #callWorker<T>(
    method: string,
    request: unknown,
    options: WorkerCallOptions,
  ): Promise<T> {
    this.#checkOpen();
    const filter = options.filter ?? this.#defaultFilter;
    // Clock reads are a large part of this layer's cost: read each clock once per call.
    const timeoutMs = options.timeoutMs ?? this.#defaultTimeoutMs;
    const wall = timeoutMs === undefined && options.deadline === undefined ? 0 : Date.now();
    const deadline = deadlineOf(timeoutMs, options.deadline, wall);
    const t0 = tickNow();
    this.#stats.calls++;
    if (this.#budgetOnPerfClock) this.#budget.deposit(t0);
    else this.#budget.deposit();
    let worker = this.registry.selectWorker(
      filter,
      options.key === undefined ? undefined : { key: options.key },
    );
    let tried: Set<string> | undefined;
    for (let attempt = 1;; attempt++) {
      try {
        const now = attempt === 1 ? wall : Date.now();
        const remaining = deadline === undefined ? undefined : deadline - now;
        return await this.#attempt<T>(worker, filter, method, request, remaining, options, t0);
      } catch (err) {
        const e = toRpcError(err);
        if (!options.idempotent || e.code !== "unavailable") throw this.#fail(e);
        (tried ??= new Set()).add(worker.id);
        if (attempt >= this.#maxAttempts) {
          throw this.#fail(this.#wrap(e, `failover gave up after ${attempt} attempts`));
        }
        if (deadline !== undefined && Date.now() >= deadline) {
          throw this.#fail(new RpcError("deadline_exceeded", `deadline passed during failover`));
        }
        const next = this.registry.trySelectWorker(filter, { key: options.key, exclude: tried });
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
        this.#stats.retries++;
        worker = next;
      }
    }
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
        const value = await this.#attempt<T>(worker, filter, method, request, remaining, options);
        return { worker, ok: true, value };
      } catch (err) {
        return { worker, ok: false, error: this.#fail(toRpcError(err)) };
      }
    }));
  }

  /**
   * A server-streaming call to one selected worker. The balancer counts the stream as one call
   * in flight until it ends.
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

  /** Counters: calls, failures, retries, ejections, connections, and attempts per worker. */
  stats(): ClusterClientStats {
    const perWorker: Record<string, WorkerCallStats> = {};
    for (const [id, s] of this.#perWorker) perWorker[id] = { ...s };
    return {
      ...this.#stats,
      ejections: this.#outliers.totalEjections,
      connections: this.#pool.size,
      evictions: this.#pool.evictions,
      perWorker,
    };
  }

  /** Closes every pooled connection and stops listening to membership. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of GONE_EVENTS) this.registry.membership.removeEventListener(t, this.#onGone);
    await this.#pool.close();
    for (const e of this.#endpoints.values()) {
      try {
        e.close();
      } catch { /* already closed */ }
    }
    this.#endpoints.clear();
  }

  /** The shared client endpoint for `hostname`'s address family, created on first use. */
  #endpointFor(hostname: string): Deno.QuicEndpoint {
    if (this.#closed) throw new RpcError("unavailable", "cluster client is closed");
    const family = hostname.includes(":") ? "v6" : "v4";
    let e = this.#endpoints.get(family);
    if (!e) {
      try {
        e = new Deno.QuicEndpoint({ hostname: family === "v6" ? "::" : "0.0.0.0", port: 0 });
      } catch (err) {
        throw new RpcError("unavailable", `cannot open a QUIC endpoint: ${err}`, { cause: err });
      }
      this.#endpoints.set(family, e);
    }
    return e;
  }

  #checkOpen(): void {
    if (this.#closed) throw new RpcError("unavailable", "cluster client is closed");
  }

  #fail(e: RpcError): RpcError {
    this.#stats.failed++;
    return e;
  }

  #wrap(e: RpcError, why: string): RpcError {
    return new RpcError(e.code, `${e.message} (${why})`, { cause: e });
  }

  #workerStats(id: string): WorkerCallStats {
    let s = this.#perWorker.get(id);
    if (!s) this.#perWorker.set(id, s = { calls: 0, failures: 0, active: 0, totalMs: 0 });
    return s;
  }

  /**
   * One attempt on one worker. Not `async`: on the hot path (pooled connection open) it adds a
   * single `then` to the RPC call instead of async frames and extra microtask hops.
   */
  #attempt<T>(
    worker: Worker,
    filter: FilterInput,
    method: string,
    request: unknown,
    timeoutMs: number | undefined,
    options: { signal?: AbortSignal; meta?: Record<string, string>; encoded?: boolean },
    t0: number = tickNow(),
  ): Promise<T> {
    const ws = this.#workerStats(worker.id);
    ws.calls++;
    ws.active++;
    this.registry.balancer.start(worker.id);
    if (timeoutMs !== undefined) {
      if (timeoutMs <= 0) {
        const e = new RpcError("deadline_exceeded", `deadline passed before calling '${method}'`);
        this.#settle(worker, ws, filter, undefined, t0, e);
        return Promise.reject(e);
      }
    }
    const callOptions = {
      timeoutMs,
      signal: options.signal,
      meta: options.meta,
      encoded: options.encoded,
    };
    const conn = this.#pool.tryAcquire(worker.addr);
    let slow: PooledConnection | undefined;
    // An evicted connection is closed, which fails its pending calls with `unavailable`.
    const call = conn
      ? conn.client.call<T>(method, request, callOptions)
      : this.#pool.acquire(worker.addr).then(
        (c) => {
          slow = c;
          return c.client.call<T>(method, request, callOptions);
        },
      );
    return call.then(
      (value) => {
        this.#settle(worker, ws, filter, conn ?? slow, t0, undefined);
        return value;
      },
      (err) => {
        throw this.#settle(worker, ws, filter, conn ?? slow, t0, err);
      },
    );
  }

  /** Books an attempt's outcome: pool, balancer, outlier detector, counters. */
  #settle(
    worker: Worker,
    ws: WorkerCallStats,
    filter: FilterInput,
    conn: PooledConnection | undefined,
    t0: number,
    err: unknown,
  ): RpcError | undefined {
    ws.active--;
    const end = tickNow();
    ws.totalMs += end - t0;
    if (conn) this.#pool.release(conn, end);
    let e: RpcError | undefined;
    let failure = false;
    if (err !== undefined) {
      e = toRpcError(err);
      if (conn?.evicted && e.code !== "deadline_exceeded") {
        // The worker left or failed while the call was in flight: retryable elsewhere.
        e = new RpcError(
          "unavailable",
          `${e.message} (connection to ${worker.id} evicted: ${conn.evictedReason})`,
          { cause: e },
        );
      }
      failure = this.#failureCodes.has(e.code);
    }
    this.registry.balancer.finish(worker.id, end - t0, !failure);
    if (failure) {
      ws.failures++;
      this.#outliers.failure(worker.id, this.registry.workers(filter).length);
    } else {
      this.#outliers.success(worker.id);
    }
    return e;
  }

  async *#stream<T>(
    options: WorkerStreamOptions,
    open: (
      client: RpcClient,
      o: { timeoutMs?: number; signal?: AbortSignal; meta?: Record<string, string> },
    ) => AsyncIterable<T>,
  ): AsyncGenerator<T, void, undefined> {
    this.#checkOpen();
    const filter = options.filter ?? this.#defaultFilter;
    const deadline = deadlineOf(
      options.timeoutMs ?? this.#defaultTimeoutMs,
      options.deadline,
      Date.now(),
    );
    this.#stats.calls++;
    const worker = this.registry.selectWorker(filter, { key: options.key });
    const balancer = this.registry.balancer;
    const ws = this.#workerStats(worker.id);
    ws.calls++;
    ws.active++;
    balancer.start(worker.id);
    const t0 = performance.now();
    let failure = false;
    let conn: PooledConnection | undefined;
    try {
      conn = await this.#pool.acquire(worker.addr);
      const timeoutMs = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      yield* open(conn.client, { timeoutMs, signal: options.signal, meta: options.meta });
    } catch (err) {
      const e = toRpcError(err);
      failure = this.#failureCodes.has(e.code);
      this.#stats.failed++;
      throw e;
    } finally {
      ws.active--;
      if (conn) this.#pool.release(conn);
      balancer.finish(worker.id, performance.now() - t0, !failure);
      if (failure) ws.failures++;
    }
  }
}

async function* toIterable<T>(p: Promise<T>): AsyncGenerator<T, void, undefined> {
  yield await p;
}
