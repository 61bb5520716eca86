/**
 * `observe(node)`: a node's metrics, health and status on an HTTP port. It installs the call
 * metrics interceptors (and, if asked, the tracing ones) on the node's server and client,
 * registers the metrics with OpenTelemetry, and serves:
 *
 * - `GET /metrics`: Prometheus text;
 * - `GET /healthz`: 200 while the process runs its node (liveness);
 * - `GET /readyz`: 200 when the node is joined and serving, 503 before, while leaving or
 *   draining, and after it stopped;
 * - `GET /`: the live status page; `GET /status` its JSON; `GET /status/events` the same as
 *   server-sent events every `statusIntervalMs`.
 *
 * @module
 */

import { RpcError } from "../errors.ts";
import { checkBoolean, checkDurationMs, checkInt, checkString } from "../options.ts";
import type { ClusterMembership } from "../membership/membership.ts";
import { observeServerCalls, type RpcServer } from "../rpc/server.ts";
import type { ClusterClient } from "../client/cluster_client.ts";
import { CallMetrics, OUTCOME_CODES } from "./call_metrics.ts";
import { collectMetrics, type MetricFamily, type MetricSources } from "./collect.ts";
import { formatPrometheus, PROMETHEUS_CONTENT_TYPE } from "./prometheus.ts";
import { registerOtelMetrics, type Unregister } from "./otel.ts";
import { clientTracing, serverTracing, type TracingOptions } from "./tracing.ts";
import { STATUS_PAGE_HTML } from "./status_page.ts";

/** The parts of a node that are observed (`Node` has them all). */
export interface ObservedNode {
  /** Gossip membership. */
  readonly membership: ClusterMembership;
  /** The RPC server. */
  readonly server: RpcServer;
  /** The cluster client. */
  readonly client: ClusterClient;
  /** `Node.ready`: joined (a seed answered, or it started a new cluster) and not stopped. */
  readonly ready?: boolean;
}

/**
 * Options of {@linkcode observe}. Every field has a documented default.
 *
 * @example
 * ```ts
 * import { type Node, observe, type ObserveOptions } from "@rpcnet/cluster";
 *
 * declare const node: Node;
 * const options: ObserveOptions = {
 *   hostname: "0.0.0.0", // reachable by the orchestrator's probes
 *   port: 9464,
 *   tracing: true, // W3C traceparent in and out, spans through OpenTelemetry
 *   statusIntervalMs: 2000,
 * };
 * const observer = observe(node, options);
 * console.log(`${observer.url}/metrics`);
 * ```
 */
export interface ObserveOptions {
  /** HTTP port; 0 picks a free one (read it from `addr`). Default 9464. */
  port?: number;
  /** Address the HTTP server binds. Default `"127.0.0.1"` (set `"0.0.0.0"` for probes from outside). */
  hostname?: string;
  /** Count calls by method and outcome and time them (interceptors on server and client). Default `true`. */
  callMetrics?: boolean;
  /** Register the metrics with the OpenTelemetry API's global meter provider. Default `true`. */
  otel?: boolean;
  /**
   * Propagate W3C `traceparent` and make spans (interceptors on server and client): `true`, or
   * tracing options. Default `false`.
   */
  tracing?: boolean | TracingOptions;
  /** How often the status page is updated. Default 1000 ms. */
  statusIntervalMs?: number;
  /** Most status pages open at once (each holds one event stream). Default 16. */
  maxStatusStreams?: number;
}

/** A member as the status page shows it. */
export interface StatusMember {
  /** Node id. */
  id: string;
  /** SWIM state. */
  state: string;
  /** Phi of the last heartbeat (0 when not monitored). */
  phi: number;
  /** Incarnation. */
  incarnation: number;
  /** Tags. */
  tags: Record<string, string>;
  /** Gossip address. */
  gossipAddr: string;
  /** RPC address. */
  rpcAddr: string;
  /** Epoch ms of the last state change seen here. */
  stateChangedAt: number;
}

/** The JSON of `GET /status`. */
export interface NodeStatus {
  /** This node's id. */
  id: string;
  /** Epoch ms of the snapshot. */
  time: number;
  /** Whether `/readyz` answers 200. */
  ready: boolean;
  /** Lifeguard local health score. */
  healthScore: number;
  /** Every member, this node and tombstones included, sorted by id. */
  members: StatusMember[];
  /** This node's client traffic per worker (cumulative; the page derives rates). */
  workers: { id: string; calls: number; failures: number; active: number; totalMs: number }[];
  /** Served unary calls per method (cumulative). */
  methods: { method: string; calls: number; errors: number; inFlight: number; seconds: number }[];
  /** RPC server counters. */
  server: ReturnType<RpcServer["stats"]>;
}

const installed = new WeakMap<object, { server: CallMetrics; client: CallMetrics }>();

/** The HTTP observer of one node (see {@linkcode observe}). */
export class NodeObserver {
  readonly #node: ObservedNode;
  readonly #sources: MetricSources;
  readonly #httpServer: Deno.HttpServer<Deno.NetAddr>;
  readonly #ac = new AbortController();
  readonly #intervalMs: number;
  readonly #maxStreams: number;
  readonly #streams = new Set<() => void>();
  #unregister: Unregister | undefined;
  #closed: Promise<void> | undefined;

  private constructor(node: ObservedNode, options: ObserveOptions) {
    const port = checkInt("http.port", options.port, 9464, 0, 65535);
    const hostname = checkString("http.hostname", options.hostname, "127.0.0.1");
    const callMetrics = checkBoolean("http.callMetrics", options.callMetrics, true);
    const otel = checkBoolean("http.otel", options.otel, true);
    this.#intervalMs = checkDurationMs("http.statusIntervalMs", options.statusIntervalMs, 1000, 50);
    this.#maxStreams = checkInt("http.maxStatusStreams", options.maxStatusStreams, 16, 0, 1024);
    const tracing = options.tracing ?? false;
    if (typeof tracing !== "boolean" && (typeof tracing !== "object" || tracing === null)) {
      throw new RpcError("invalid_argument", `http.tracing must be true, false or tracing options`);
    }
    this.#node = node;
    this.#sources = { membership: node.membership, server: node.server, client: node.client };
    if (callMetrics) {
      // Once per node, even if observed twice: a second chain would count every call twice.
      let calls = installed.get(node);
      if (calls === undefined) {
        calls = { server: new CallMetrics(), client: new CallMetrics() };
        installed.set(node, calls);
        node.server.use(calls.server.serverInterceptor());
        observeServerCalls(node.server, calls.server.streamObserver);
        node.client.use(calls.client.clientInterceptor());
      }
      this.#sources.serverCalls = calls.server;
      this.#sources.clientCalls = calls.client;
    }
    if (tracing) {
      const o = tracing === true ? {} : tracing;
      node.server.use(serverTracing(o));
      node.client.use(clientTracing(o));
    }
    if (otel) this.#unregister = registerOtelMetrics(this.#sources);
    try {
      this.#httpServer = Deno.serve({
        hostname,
        port,
        signal: this.#ac.signal,
        onListen: () => {},
        onError: () => new Response("internal error", { status: 500 }),
      }, (req) => this.#handle(req));
    } catch (e) {
      this.#unregister?.();
      throw new RpcError(
        "invalid_argument",
        `http: cannot listen on ${hostname}:${port}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  /** Starts observing `node`; see {@linkcode observe}. */
  static start(node: ObservedNode, options: ObserveOptions = {}): NodeObserver {
    return new NodeObserver(node, options);
  }

  /** The bound HTTP address. */
  get addr(): { hostname: string; port: number } {
    const a = this.#httpServer.addr;
    return { hostname: a.hostname, port: a.port };
  }

  /** `http://host:port` of the HTTP server. */
  get url(): string {
    const h = this.addr.hostname;
    return `http://${h.includes(":") ? `[${h}]` : h}:${this.addr.port}`;
  }

  /** Every metric family now. */
  metrics(): MetricFamily[] {
    return collectMetrics(this.#sources);
  }

  /** The Prometheus text of `/metrics`. */
  prometheus(): string {
    return formatPrometheus(this.metrics());
  }

  /** Joined and serving: membership running, this node alive (not leaving), server accepting. */
  ready(): boolean {
    const m = this.#node.membership;
    return (this.#node.ready ?? true) && m.running && m.localMember().state === "alive" &&
      this.#node.server.accepting;
  }

  /** The JSON of `/status`. */
  status(): NodeStatus {
    const m = this.#node.membership;
    const members: StatusMember[] = m.members().map((x) => ({
      id: x.id,
      state: x.state,
      phi: Number.isFinite(x.phi) ? Math.round(x.phi * 100) / 100 : 999,
      incarnation: x.incarnation,
      tags: { ...x.tags },
      gossipAddr: x.gossipAddr,
      rpcAddr: x.rpcAddr,
      stateChangedAt: x.stateChangedAt,
    })).sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const cs = this.#node.client.stats();
    const workers = Object.entries(cs.perWorker).map(([id, w]) => ({ id, ...w }))
      .sort((a, b) => a.id < b.id ? -1 : 1);
    const methods = (this.#sources.serverCalls?.methods() ?? []).map((x) => {
      let calls = 0;
      for (const v of x.outcomes) calls += v;
      return {
        method: x.method,
        calls,
        errors: calls - x.outcomes[OUTCOME_CODES.indexOf("ok")],
        inFlight: x.inFlight,
        seconds: x.latency.sum,
      };
    });
    return {
      id: m.localId,
      time: Date.now(),
      ready: this.ready(),
      healthScore: m.stats().awareness,
      members,
      workers,
      methods,
      server: this.#node.server.stats(),
    };
  }

  #handle(req: Request): Response {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    switch (path) {
      case "/metrics":
        return new Response(this.prometheus(), {
          headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
        });
      case "/healthz":
        return text(this.#closed === undefined ? 200 : 503, this.#closed ? "stopping\n" : "ok\n");
      case "/readyz": {
        const ready = this.ready();
        return text(ready ? 200 : 503, ready ? "ready\n" : "not ready\n");
      }
      case "/":
      case "/status.html":
        return new Response(STATUS_PAGE_HTML, {
          headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
        });
      case "/status":
        return Response.json(this.status(), { headers: { "cache-control": "no-store" } });
      case "/status/events":
        return this.#events();
      default:
        return text(404, "not found: try /metrics, /healthz, /readyz, / or /status\n");
    }
  }

  #events(): Response {
    if (this.#streams.size >= this.#maxStreams || this.#closed) {
      return text(503, "too many status pages open\n");
    }
    const enc = new TextEncoder();
    let stop = (): void => {};
    const body = new ReadableStream<Uint8Array>({
      start: (ctl) => {
        const send = () => {
          try {
            ctl.enqueue(enc.encode(`data: ${JSON.stringify(this.status())}\n\n`));
          } catch {
            stop();
          }
        };
        const timer = setInterval(send, this.#intervalMs);
        stop = () => {
          clearInterval(timer);
          if (this.#streams.delete(stop)) {
            try {
              ctl.close();
            } catch { /* already closed */ }
          }
        };
        this.#streams.add(stop);
        send();
      },
      cancel: () => stop(),
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }

  /** Stops the HTTP server and the OpenTelemetry registration (interceptors stay installed). */
  close(): Promise<void> {
    return this.#closed ??= (async () => {
      this.#unregister?.();
      for (const stop of [...this.#streams]) stop();
      this.#ac.abort();
      await this.#httpServer.finished.catch(() => {});
    })();
  }
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/**
 * Serves a node's metrics (`/metrics`), health (`/healthz`, `/readyz`) and live status page
 * (`/`) over HTTP, and registers its metrics with OpenTelemetry.
 *
 * @example
 * ```ts
 * import { Node, observe } from "@rpcnet/cluster";
 *
 * const node = await Node.start({ tags: { role: "worker" } });
 * const observer = observe(node, { port: 9464 });
 * console.log(`status page: ${observer.url}/`);
 * ```
 *
 * @throws {RpcError} `invalid_argument` for bad options or a port that cannot be bound
 */
export function observe(node: ObservedNode, options: ObserveOptions = {}): NodeObserver {
  return NodeObserver.start(node, options);
}
