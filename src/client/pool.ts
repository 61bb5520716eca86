/**
 * Pooled RPC connections, one per (worker id, address), opened on first use and closed after
 * they have been idle for a while.
 *
 * Three ways a connection leaves the pool early:
 * - membership says its worker failed (`evict`: calls waiting on it fail with `unavailable` at
 *   once, so idempotent ones fail over) or left (`retire`: closed once its calls are done).
 *   Only the connection opened for that member id goes: a new process (new id) on the same
 *   address keeps its own connection.
 * - a liveness probe goes unanswered: while calls are outstanding on a connection and nothing
 *   has come back on it for `probeAfterMs`, the pool opens a probe stream; no answer within
 *   `probeTimeoutMs` means the peer is gone (killed, or replaced by a new process at the same
 *   address that cannot send a valid stateless reset) and the connection is evicted, instead
 *   of hanging until the QUIC idle timeout.
 * - the client lost its connection: the pool reconnects through its own connector (never the
 *   client's internal reconnect), so a connect-phase error (a rejected secret) is known as one.
 *
 * The pool also owns the shared client QUIC endpoints (one per address family).
 *
 * @module
 */

import { RpcError } from "../errors.ts";
import { type HostPort, requireHostPort } from "../addr.ts";
import type { RpcClient } from "../rpc/client.ts";

/**
 * Opens a connection to `host:port`, through `endpoint` when the pool shares one (the default
 * connector passes it to `RpcClient.connect`).
 */
export type Connector = (
  hostname: string,
  port: number,
  endpoint?: Deno.QuicEndpoint,
) => Promise<RpcClient>;

/** One pooled connection. */
export interface PooledConnection {
  /** The member id the connection was opened for. */
  readonly id: string;
  /** The worker's RPC address, `host:port`. */
  readonly addr: string;
  /** The open client. */
  readonly client: RpcClient;
  /** Whether the connection was evicted. */
  readonly evicted: boolean;
  /** Why it was evicted (e.g. "worker w2 NodeFailed"). */
  readonly evictedReason?: string;
}

/** Settings of a {@linkcode ConnectionPool}. */
export interface PoolOptions {
  /** Opens connections. */
  connect: Connector;
  /** Connections unused this long are closed, ms. */
  idleTimeoutMs: number;
  /** Open every connection through one shared endpoint per address family. */
  shareEndpoint: boolean;
  /** Probe a connection with calls outstanding after this long without an answer, ms; 0: never. */
  probeAfterMs: number;
  /** A probe unanswered this long evicts the connection, ms. */
  probeTimeoutMs: number;
}

/** A streaming method no server registers: the probe's `not_found` proves the peer is alive. */
export const PROBE_METHOD = "rpcnet.pool.probe";

interface Entry {
  key: string;
  id: string;
  addr: string;
  client?: RpcClient;
  connecting?: Promise<RpcClient>;
  inflight: number;
  lastUsed: number;
  /** Last time an answer came back on this connection (or calls started on an idle one). */
  heardAt: number;
  probing: boolean;
  evicted: boolean;
  evictedReason?: string;
  retiring?: string;
}

/** Splits `host:port` (IPv6 in brackets allowed); `invalid_argument` when malformed. */
export function splitHostPort(addr: string): HostPort {
  return requireHostPort("address", addr);
}

function keyOf(id: string, addr: string): string {
  return `${id}\u0000${addr}`;
}

/** Pooled connections keyed by (member id, address), with an idle sweep and liveness probes. */
export class ConnectionPool {
  readonly #o: PoolOptions;
  readonly #entries = new Map<string, Entry>();
  /**
   * The newest entry per member id, every one also in `#entries`: the per-call lookup by id
   * reuses the id string's cached hash, where the (id, address) key would be a new string to
   * build and hash on every call.
   */
  readonly #byId = new Map<string, Entry>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #closing = new Set<Promise<void>>();
  #retiring = new Set<Entry>();
  #endpoints = new Map<"v4" | "v6", Deno.QuicEndpoint>();
  /** Connections evicted because their worker failed or left, or a probe went unanswered. */
  evictions = 0;
  /** Liveness probes sent. */
  probes = 0;
  /** Connections evicted because a probe went unanswered. */
  probeFailures = 0;

  constructor(options: PoolOptions) {
    this.#o = options;
  }

  /** Open (or opening) connections. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The open connection to worker `id` at `addr` without waiting, or `undefined` when it must
   * be (re)opened with {@linkcode ConnectionPool.acquire}; pair with
   * {@linkcode ConnectionPool.release}.
   */
  tryAcquire(id: string, addr: string, now: number): PooledConnection | undefined {
    let e = this.#byId.get(id);
    if (e === undefined || e.addr !== addr) e = this.#entries.get(keyOf(id, addr));
    if (e === undefined || e.client === undefined || !this.#usable(e.client)) return undefined;
    if (e.inflight++ === 0) e.heardAt = now;
    return e as Entry & { client: RpcClient };
  }

  /**
   * A connection to worker `id` at `addr`, opening it when needed; pair with
   * {@linkcode ConnectionPool.release}.
   *
   * @throws {RpcError} `unavailable` or `unauthenticated` when the connection cannot be opened
   */
  async acquire(id: string, addr: string): Promise<PooledConnection> {
    if (this.#closed) throw new RpcError("unavailable", "cluster client is closed");
    const key = keyOf(id, addr);
    let e = this.#entries.get(key);
    if (e?.client && !this.#usable(e.client)) {
      // Lost (or draining after GOAWAY): its calls in flight finish or fail on their own; new
      // calls get a fresh connection through the connector.
      this.#retireEntry(e, "connection lost");
      e = undefined;
    }
    if (!e) e = this.#open(id, addr);
    const now = performance.now();
    if (e.inflight++ === 0) e.heardAt = now;
    e.lastUsed = now;
    if (!e.client) {
      try {
        await (e.connecting ?? Promise.reject(new RpcError("unavailable", "evicted")));
      } catch (err) {
        e.inflight--;
        throw err;
      }
      if (e.evicted || !e.client) {
        e.inflight--;
        throw new RpcError("unavailable", `connection to ${addr} was evicted while connecting`);
      }
    }
    return e as Entry & { client: RpcClient };
  }

  /**
   * Ends one use of a connection. `heard`: an answer came back from the server (a response or
   * a handler's error), which proves the connection alive.
   */
  release(c: PooledConnection, now: number, heard: boolean): void {
    const e = c as Entry;
    e.inflight--;
    e.lastUsed = now;
    if (heard) e.heardAt = now;
    if (e.retiring && e.inflight === 0) this.#drop(e, e.retiring);
  }

  /** An answer (a stream message) came back on `c`: the connection is alive. */
  heard(c: PooledConnection, now: number): void {
    (c as Entry).heardAt = now;
  }

  /**
   * Closes the connections opened for worker `id` once their calls in flight have finished
   * (the worker left gracefully and drains them); new calls open a fresh connection.
   */
  retire(id: string, reason: string): void {
    for (const e of this.#entriesOf(id)) {
      this.evictions++;
      this.#retireEntry(e, reason);
    }
  }

  /** Closes the connections opened for worker `id` now; calls waiting fail with `unavailable`. */
  evict(id: string, reason: string): boolean {
    const entries = this.#entriesOf(id);
    for (const e of entries) {
      this.evictions++;
      this.#drop(e, reason);
    }
    return entries.length > 0;
  }

  /** Closes every connection and endpoint and stops the timers. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    const clients: Promise<void>[] = [];
    for (const e of [...this.#entries.values(), ...this.#retiring]) {
      const c = this.#drop(e, "cluster client closed");
      if (c) clients.push(c);
    }
    await Promise.allSettled([...clients, ...this.#closing]);
    for (const ep of this.#endpoints.values()) {
      try {
        ep.close();
      } catch { /* already closed */ }
    }
    this.#endpoints.clear();
  }

  // A fake client (tests, custom connectors) may not report `connected`: trust it until closed.
  #usable(client: RpcClient): boolean {
    return !client.closed && client.connected !== false;
  }

  #entriesOf(id: string): Entry[] {
    const out: Entry[] = [];
    for (const e of this.#entries.values()) if (e.id === id) out.push(e);
    return out;
  }

  #retireEntry(e: Entry, reason: string): void {
    if (e.inflight === 0) {
      this.#drop(e, reason);
      return;
    }
    e.retiring = reason;
    this.#forget(e);
    this.#retiring.add(e);
  }

  /** The shared client endpoint for `hostname`'s address family, created on first use. */
  #endpointFor(hostname: string): Deno.QuicEndpoint {
    const family = hostname.includes(":") ? "v6" : "v4";
    let ep = this.#endpoints.get(family);
    if (!ep) {
      try {
        ep = new Deno.QuicEndpoint({ hostname: family === "v6" ? "::" : "0.0.0.0", port: 0 });
      } catch (err) {
        throw new RpcError("unavailable", `cannot open a QUIC endpoint: ${err}`, { cause: err });
      }
      this.#endpoints.set(family, ep);
    }
    return ep;
  }

  #open(id: string, addr: string): Entry {
    let target: { hostname: string; port: number };
    try {
      target = splitHostPort(addr);
    } catch (e) {
      // The address came from gossip: this worker is unreachable, others may not be.
      throw new RpcError("unavailable", `worker address ${JSON.stringify(addr)} is malformed`, {
        cause: e,
      });
    }
    const now = performance.now();
    const key = keyOf(id, addr);
    const e: Entry = {
      key,
      id,
      addr,
      inflight: 0,
      lastUsed: now,
      heardAt: now,
      probing: false,
      evicted: false,
    };
    let connecting: Promise<RpcClient>;
    try {
      const endpoint = this.#o.shareEndpoint ? this.#endpointFor(target.hostname) : undefined;
      connecting = this.#o.connect(target.hostname, target.port, endpoint);
    } catch (err) {
      connecting = Promise.reject(err);
    }
    e.connecting = connecting.then(
      (client) => {
        e.connecting = undefined;
        if (e.evicted) {
          this.#track(client.close().catch(() => {}));
          throw new RpcError("unavailable", `connection to ${addr} was evicted while connecting`);
        }
        e.client = client;
        e.heardAt = performance.now();
        return client;
      },
      (err) => {
        e.connecting = undefined;
        this.#forget(e);
        throw RpcError.is(err)
          ? err
          : new RpcError("unavailable", `cannot connect to ${addr}: ${err}`, { cause: err });
      },
    );
    e.connecting.catch(() => {});
    this.#entries.set(key, e);
    this.#byId.set(id, e);
    this.#schedule();
    return e;
  }

  #track(closing: Promise<void>): Promise<void> {
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
    return closing;
  }

  /** Removes `e` from the lookups (not from `#retiring`). */
  #forget(e: Entry): void {
    if (this.#entries.get(e.key) === e) this.#entries.delete(e.key);
    if (this.#byId.get(e.id) === e) this.#byId.delete(e.id);
  }

  #drop(e: Entry, reason: string): Promise<void> | undefined {
    this.#forget(e);
    this.#retiring.delete(e);
    if (this.#entries.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    if (e.evicted) return undefined;
    e.evicted = true; // closing the client fails its pending calls with `unavailable`
    e.evictedReason = reason;
    if (!e.client) return undefined;
    return this.#track(e.client.close().catch(() => {}));
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    let every = Math.max(50, Math.min(this.#o.idleTimeoutMs / 2, 5_000));
    if (this.#o.probeAfterMs > 0) every = Math.max(25, Math.min(every, this.#o.probeAfterMs / 2));
    const timer = setInterval(() => this.#sweep(), every);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #sweep(): void {
    const now = performance.now();
    const probeAfter = this.#o.probeAfterMs;
    for (const e of [...this.#entries.values(), ...this.#retiring]) {
      if (!e.client || e.evicted || e.retiring) continue;
      if (!this.#usable(e.client)) {
        // Lost, or draining after the server's GOAWAY (it said goodbye: nothing to probe).
        this.#retireEntry(e, "connection lost");
      } else if (e.inflight === 0) {
        if (now - e.lastUsed >= this.#o.idleTimeoutMs) this.#drop(e, "idle");
      } else if (probeAfter > 0 && !e.probing && now - e.heardAt >= probeAfter) {
        this.#probe(e);
      }
    }
  }

  /**
   * Asks the server for a streaming method nobody registers: any answer (`not_found`) proves
   * the peer alive; silence for `probeTimeoutMs` evicts the connection. The pool's own timer
   * bounds the probe, since opening a stream on a dead connection may itself wait.
   */
  async #probe(e: Entry): Promise<void> {
    const client = e.client!;
    const timeoutMs = this.#o.probeTimeoutMs;
    e.probing = true;
    this.probes++;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silent = new Promise<"silent">((resolve) => {
      timer = setTimeout(() => resolve("silent"), timeoutMs);
    });
    const answered = (async (): Promise<"answered" | "lost"> => {
      try {
        const it = client.serverStream(PROBE_METHOD, null, { timeoutMs, signal: abort.signal });
        for await (const _ of it) break;
        return "answered";
      } catch (err) {
        if (RpcError.is(err, "deadline_exceeded") || RpcError.is(err, "cancelled")) return "lost";
        // `unavailable` from a connection already lost: its calls failed with it.
        return RpcError.is(err, "unavailable") ? "lost" : "answered";
      }
    })();
    try {
      const outcome = await Promise.race([answered, silent]);
      if (outcome === "answered") {
        e.heardAt = performance.now();
      } else if (!e.evicted && e.client === client) {
        this.probeFailures++;
        this.evictions++;
        this.#drop(e, `no answer to a liveness probe within ${timeoutMs} ms`);
      }
    } finally {
      clearTimeout(timer);
      abort.abort();
      e.probing = false;
    }
  }
}
