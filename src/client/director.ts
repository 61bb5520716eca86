/**
 * Director: the coordinator of the coordinator-worker pattern. It serves RPC like any server,
 * and forwards calls to a worker through a {@linkcode ClusterClient}, so its callers need only
 * its address (no gossip, no registry). Methods named with `forward` get their own routing;
 * every other unary method is forwarded by the server's fallback, its payloads passed through
 * as encoded bytes (unless restricted to an allow-list).
 *
 * @module
 */

import { RpcError } from "../errors.ts";
import { RpcServer } from "../rpc/server.ts";
import type { RpcServerOptions } from "../rpc/types.ts";
import { checkFilter, type FilterInput } from "../registry/filter.ts";
import {
  checkBoolean,
  checkDurationMs,
  checkPlainObject,
  checkString,
  checkStringArray,
  invalidOption,
} from "../options.ts";
import { ClusterClient } from "./cluster_client.ts";
import type { EncodedPayload } from "../rpc/encoded.ts";

/** How one forwarded method is routed. */
export interface ForwardOptions {
  /** Which workers serve the method. Default: the director's filter. */
  filter?: FilterInput;
  /** Safe to retry on another worker. Default: the director's `idempotent`. */
  idempotent?: boolean;
  /** Timeout per forwarded call, ms, on top of the caller's own deadline. */
  timeoutMs?: number;
  /** Derives an affinity key from the request (for `consistent_hash`). */
  key?: (request: unknown) => string | undefined;
}

/**
 * Options of {@linkcode Director.start}.
 *
 * @example
 * ```ts
 * import { Director, type DirectorOptions, type Node } from "@rpcnet/cluster";
 *
 * declare const node: Node; // a started node that sees the workers
 * const options: DirectorOptions = {
 *   client: node.client,
 *   server: { hostname: "0.0.0.0", port: 7000, secret: Deno.env.get("RPCNET_SECRET") },
 *   methods: {
 *     compute: { filter: "role=worker", idempotent: true, timeoutMs: 5000 },
 *     session: { filter: "role=worker", key: (req) => (req as { user?: string }).user },
 *   },
 *   allow: ["status"], // of the methods not named above, forward only `status`
 * };
 * const director = await Director.start(options);
 * ```
 */
export interface DirectorOptions {
  /** The client calls are forwarded through. */
  client: ClusterClient;
  /** The RPC server to register on (already created); default: a new one from `server`. */
  rpcServer?: RpcServer;
  /** Options of the RPC server to create when `rpcServer` is not given. */
  server?: RpcServerOptions;
  /** Methods to forward from the start: names, or names with routing options. */
  methods?: readonly string[] | Readonly<Record<string, ForwardOptions>>;
  /** Default filter of forwarded calls. Default `"role=worker"`. */
  filter?: FilterInput;
  /** Default idempotency of forwarded calls. Default `false`. */
  idempotent?: boolean;
  /**
   * Forward unary calls to methods not named in `methods` (nor with `forward`) too, with the
   * default filter and idempotency. Default `true`; `false` answers them `not_found`.
   */
  forwardUnknown?: boolean;
  /**
   * Restricts the forwarding of unnamed methods to these names; calls to any other unnamed
   * method get `not_found` without reaching a worker. Default: every method.
   */
  allow?: readonly string[];
}

/** Options of {@linkcode Director.forwardUnknown}. */
export interface ForwardUnknownOptions {
  /** Forward only these method names; others get `not_found`. Default: every method. */
  allow?: readonly string[];
}

// Handlers get a shared frozen empty `meta` when the caller sent none: forwarding it would
// encode an empty map on every call.
function hasKeys(meta: Record<string, string>): boolean {
  for (const _ in meta) return true;
  return false;
}

/** Checks one method's routing options; `prefix` names them as the user wrote them. */
function checkForward(prefix: string, v: unknown): ForwardOptions {
  const o = checkPlainObject(prefix === "" ? "forward options" : prefix, v) as ForwardOptions;
  const name = (k: string) => prefix === "" ? k : `${prefix}.${k}`;
  if (o.filter !== undefined) checkFilter(name("filter"), o.filter);
  checkBoolean(name("idempotent"), o.idempotent, false);
  if (o.timeoutMs !== undefined) checkDurationMs(name("timeoutMs"), o.timeoutMs, 0);
  if (o.key !== undefined && typeof o.key !== "function") {
    throw invalidOption(name("key"), "a function of the request", o.key);
  }
  return o;
}

/**
 * Accepts calls and forwards them to workers.
 *
 * @example
 * ```ts
 * import { Director, type Node } from "@rpcnet/cluster";
 *
 * declare const node: Node; // a started node that sees the workers
 * const director = await Director.start({
 *   client: node.client,
 *   server: { port: 7000 },
 *   methods: { compute: { filter: "role=worker", idempotent: true } },
 * });
 * console.log(`director listening on ${director.addr.hostname}:${director.addr.port}`);
 * // Any other unary method is forwarded too, its payload passed through undecoded; restrict
 * // that with `allow: ["status"]`, or turn it off with `forwardUnknown: false`.
 * ```
 */
export class Director {
  /** The server callers talk to. */
  readonly server: RpcServer;
  /** The client that forwards. */
  readonly client: ClusterClient;
  /** Forwarded calls since start. */
  forwarded = 0;

  #filter: FilterInput;
  #idempotent: boolean;
  #ownsServer: boolean;
  #methods = new Set<string>();

  /**
   * Wraps an existing server; prefer {@linkcode Director.start}.
   *
   * @param server the RPC server to register forwarding handlers on
   * @param client the client that forwards
   * @param options default filter and idempotency
   */
  constructor(
    server: RpcServer,
    client: ClusterClient,
    options: { filter?: FilterInput; idempotent?: boolean; ownsServer?: boolean } = {},
  ) {
    const o = checkPlainObject("Director options", options);
    if (!(server instanceof RpcServer)) throw invalidOption("rpcServer", "an RpcServer", server);
    if (!(client instanceof ClusterClient)) {
      throw invalidOption("client", "a ClusterClient", client);
    }
    this.server = server;
    this.client = client;
    this.#filter = o.filter === undefined ? "role=worker" : checkFilter("filter", o.filter);
    this.#idempotent = checkBoolean("idempotent", o.idempotent, false);
    this.#ownsServer = checkBoolean("ownsServer", o.ownsServer, false);
  }

  /**
   * Creates (or adopts) the server, registers the forwarded methods and starts serving.
   *
   * @returns the running director
   */
  static async start(options: DirectorOptions): Promise<Director> {
    checkPlainObject("Director.start options", options);
    if (!(options.client instanceof ClusterClient)) {
      throw invalidOption("client", "a ClusterClient", options.client);
    }
    if (options.rpcServer !== undefined && !(options.rpcServer instanceof RpcServer)) {
      throw invalidOption("rpcServer", "an RpcServer", options.rpcServer);
    }
    const forwardUnknown = checkBoolean("forwardUnknown", options.forwardUnknown, true);
    const allow = options.allow === undefined
      ? undefined
      : checkStringArray("allow", options.allow, []);
    const methods = options.methods ?? [];
    if (Array.isArray(methods)) checkStringArray("methods", methods, []);
    else {
      for (const [m, o] of Object.entries(checkPlainObject("methods", methods))) {
        checkForward(`methods.${m}`, o);
      }
    }
    const server = options.rpcServer ?? new RpcServer(options.server);
    const director = new Director(server, options.client, {
      filter: options.filter,
      idempotent: options.idempotent,
      ownsServer: !options.rpcServer,
    });
    if (Array.isArray(methods)) { for (const m of methods) director.forward(m); }
    else {
      for (const [m, o] of Object.entries(methods as Record<string, ForwardOptions>)) {
        director.forward(m, o);
      }
    }
    if (forwardUnknown) director.forwardUnknown({ allow });
    if (!options.rpcServer) await server.start();
    return director;
  }

  /** Where callers reach the director (after start). */
  get addr(): { hostname: string; port: number } {
    return this.server.addr;
  }

  /** Methods forwarded so far. */
  get methods(): string[] {
    return [...this.#methods];
  }

  /**
   * Forwards unary calls of `method` to a worker; the caller's deadline, cancellation and
   * metadata travel with the forwarded call. Request and response pass through as encoded
   * bytes; only a `key` function makes the director decode the request (to compute the key).
   */
  forward(method: string, options: ForwardOptions = {}): this {
    checkString("method", method, "");
    checkForward("", options);
    const filter = options.filter ?? this.#filter;
    const idempotent = options.idempotent ?? this.#idempotent;
    const keyOf = options.key;
    this.#methods.add(method);
    this.server.register(method, (request, ctx) => {
      this.forwarded++;
      return this.client.callWorker(method, request, {
        filter,
        idempotent,
        timeoutMs: options.timeoutMs,
        deadline: ctx.deadline,
        signal: ctx.signal,
        meta: hasKeys(ctx.meta) ? ctx.meta : undefined,
        key: keyOf?.((request as EncodedPayload).decode()),
        encoded: true,
      });
    }, { encoded: true });
    return this;
  }

  /**
   * Forwards every unary method that has no handler of its own (the server's fallback) to a
   * worker with the director's default filter and idempotency. The request and response
   * payloads pass through as encoded bytes ({@linkcode EncodedPayload}): the director never
   * decodes them. A method the worker does not serve comes back `not_found` from the worker.
   *
   * @throws {RpcError} `invalid_argument` when the server already has a fallback
   */
  forwardUnknown(options: ForwardUnknownOptions = {}): this {
    checkPlainObject("forwardUnknown options", options);
    const allow = options.allow === undefined
      ? undefined
      : new Set(checkStringArray("allow", options.allow, []));
    const filter = this.#filter;
    const idempotent = this.#idempotent;
    this.server.registerFallback((method, request, ctx) => {
      if (allow !== undefined && !allow.has(method)) {
        throw new RpcError("not_found", `method '${method}' is not forwarded by this director`);
      }
      this.forwarded++;
      return this.client.callWorker(method, request, {
        filter,
        idempotent,
        deadline: ctx.deadline,
        signal: ctx.signal,
        meta: hasKeys(ctx.meta) ? ctx.meta : undefined,
        encoded: true,
      });
    }, { encoded: true });
    return this;
  }

  /** Forwards a server-streaming method to one worker. */
  forwardServerStream(method: string, options: ForwardOptions = {}): this {
    checkString("method", method, "");
    checkForward("", options);
    const filter = options.filter ?? this.#filter;
    this.#methods.add(method);
    this.server.registerServerStream(method, (request, ctx) => {
      this.forwarded++;
      return this.client.serverStream(method, request, {
        filter,
        timeoutMs: options.timeoutMs,
        deadline: ctx.deadline,
        signal: ctx.signal,
        meta: ctx.meta,
        key: options.key?.(request),
      });
    });
    return this;
  }

  /** Stops serving (graceful drain); the client stays open (it may be shared). */
  async close(): Promise<void> {
    if (this.#ownsServer) await this.server.close();
  }
}
