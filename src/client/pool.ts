/**
 * One pooled RPC connection per worker address, opened on first use and closed after it has
 * been idle for a while. When membership says a worker failed or left, its connection is
 * evicted at once and calls still waiting on it fail with `unavailable`, so idempotent ones can
 * fail over instead of waiting for a QUIC idle timeout.
 *
 * @module
 */

import { RpcError } from "../errors.ts";
import { type HostPort, requireHostPort } from "../addr.ts";
import type { RpcClient } from "../rpc/client.ts";

/** Opens a connection to `host:port`. */
export type Connector = (hostname: string, port: number) => Promise<RpcClient>;

/** One pooled connection. */
export interface PooledConnection {
  /** The worker's RPC address, `host:port`. */
  readonly addr: string;
  /** The open client. */
  readonly client: RpcClient;
  /** Whether the connection was evicted. */
  readonly evicted: boolean;
  /** Why it was evicted (e.g. "worker w2 NodeFailed"). */
  readonly evictedReason?: string;
}

interface Entry {
  addr: string;
  client?: RpcClient;
  connecting?: Promise<RpcClient>;
  inflight: number;
  lastUsed: number;
  evicted: boolean;
  evictedReason?: string;
  retiring?: string;
}

/** Splits `host:port` (IPv6 in brackets allowed); `invalid_argument` when malformed. */
export function splitHostPort(addr: string): HostPort {
  return requireHostPort("address", addr);
}

/** Pooled connections keyed by address, with an idle sweep. */
export class ConnectionPool {
  readonly #connect: Connector;
  readonly #idleMs: number;
  readonly #entries = new Map<string, Entry>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #closing = new Set<Promise<void>>();
  #retiring = new Set<Entry>();
  /** Connections opened since creation. */
  opened = 0;
  /** Connections closed for idleness. */
  idleClosed = 0;
  /** Connections evicted because their worker failed or left. */
  evictions = 0;

  constructor(connect: Connector, idleTimeoutMs: number) {
    this.#connect = connect;
    this.#idleMs = idleTimeoutMs;
  }

  /** Open (or opening) connections. */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether a connection to `addr` is pooled. */
  has(addr: string): boolean {
    return this.#entries.has(addr);
  }

  /**
   * The open connection to `addr` without waiting, or `undefined` when it must be (re)opened
   * with {@linkcode ConnectionPool.acquire}; pair with {@linkcode ConnectionPool.release}.
   */
  tryAcquire(addr: string): PooledConnection | undefined {
    const e = this.#entries.get(addr);
    if (e === undefined || e.client === undefined || e.client.closed) return undefined;
    e.inflight++;
    return e as Entry & { client: RpcClient };
  }

  /**
   * A connection to `addr`, opening it when needed; pair with {@linkcode ConnectionPool.release}.
   *
   * @throws {RpcError} `unavailable` when the connection cannot be opened
   */
  async acquire(addr: string): Promise<PooledConnection> {
    if (this.#closed) throw new RpcError("unavailable", "cluster client is closed");
    let e = this.#entries.get(addr);
    if (e?.client?.closed) {
      this.#drop(e, "connection closed");
      e = undefined;
    }
    if (!e) e = this.#open(addr);
    e.inflight++;
    e.lastUsed = performance.now();
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

  /** Ends one use of a connection from {@linkcode ConnectionPool.acquire}. */
  release(c: PooledConnection, now: number = performance.now()): void {
    const e = c as Entry;
    e.inflight--;
    e.lastUsed = now;
    if (e.retiring && e.inflight === 0) this.#drop(e, e.retiring);
  }

  /**
   * Closes the connection to `addr` once its calls in flight have finished (the worker left
   * gracefully and drains them); new calls open a fresh connection.
   */
  retire(addr: string, reason: string): void {
    const e = this.#entries.get(addr);
    if (!e) return;
    this.evictions++;
    if (e.inflight === 0) {
      this.#drop(e, reason);
      return;
    }
    e.retiring = reason;
    this.#entries.delete(addr);
    this.#retiring.add(e);
  }

  /** Closes the connection to `addr` now; calls waiting on it fail with `unavailable`. */
  evict(addr: string, reason: string): boolean {
    const e = this.#entries.get(addr);
    if (!e) return false;
    this.evictions++;
    this.#drop(e, reason);
    return true;
  }

  /** Closes every connection and stops the idle sweep. */
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
  }

  #open(addr: string): Entry {
    let target: { hostname: string; port: number };
    try {
      target = splitHostPort(addr);
    } catch (e) {
      // The address came from gossip: this worker is unreachable, others may not be.
      throw new RpcError("unavailable", `worker address ${JSON.stringify(addr)} is malformed`, {
        cause: e,
      });
    }
    const e: Entry = {
      addr,
      inflight: 0,
      lastUsed: performance.now(),
      evicted: false,
    };
    e.connecting = this.#connect(target.hostname, target.port).then(
      (client) => {
        e.connecting = undefined;
        if (e.evicted) {
          const closing = client.close().catch(() => {});
          this.#closing.add(closing);
          closing.finally(() => this.#closing.delete(closing));
          throw new RpcError("unavailable", `connection to ${addr} was evicted while connecting`);
        }
        e.client = client;
        this.opened++;
        return client;
      },
      (err) => {
        e.connecting = undefined;
        if (this.#entries.get(addr) === e) this.#entries.delete(addr);
        throw RpcError.is(err)
          ? err
          : new RpcError("unavailable", `cannot connect to ${addr}: ${err}`, { cause: err });
      },
    );
    e.connecting.catch(() => {});
    this.#entries.set(addr, e);
    this.#schedule();
    return e;
  }

  #drop(e: Entry, reason: string): Promise<void> | undefined {
    if (this.#entries.get(e.addr) === e) this.#entries.delete(e.addr);
    this.#retiring.delete(e);
    if (this.#entries.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    if (e.evicted) return undefined;
    e.evicted = true; // closing the client fails its pending calls with `unavailable`
    e.evictedReason = reason;
    if (!e.client) return undefined;
    const closing = e.client.close().catch(() => {});
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
    return closing;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const every = Math.max(50, Math.min(this.#idleMs / 2, 5_000));
    const timer = setInterval(() => this.#sweep(), every);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #sweep(): void {
    const now = performance.now();
    for (const e of [...this.#entries.values()]) {
      if (e.inflight === 0 && e.client && now - e.lastUsed >= this.#idleMs) {
        this.idleClosed++;
        this.#drop(e, "idle");
      }
    }
  }
}
