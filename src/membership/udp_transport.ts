/**
 * The real network under SWIM: UDP datagrams for gossip, plus a TCP request/response channel on
 * the same port number for the rare large exchanges (push-pull full-state sync, join).
 *
 * Why TCP rather than QUIC for the reliable channel: push-pull happens once per ~30 s per node
 * and join once per lifetime, so connection set-up cost does not matter; a full state of 10,000
 * members is ~1 MB which TCP streams with flow control and no certificates to provision; the
 * datagram socket and the stream listener share one port number, like memberlist. Payloads are
 * length-prefixed and size-bounded in both directions, and every exchange has a deadline.
 * Confidentiality is the protocol's job: it seals payloads with its {@linkcode Keyring}.
 *
 * Stream framing: request `[u32 length][bytes]`; reply `[u8 status][u32 length][bytes]` where
 * status 0 is a reply and status 1 an error (`[u8 code index][utf-8 message]`).
 *
 * @module
 */
import { RpcError, type RpcErrorCode } from "../errors.ts";
import { formatHostPort as formatAddr, parseHostPort } from "../addr.ts";
import { checkDurationMs, checkInt } from "../options.ts";
import type { PacketHandler, StreamHandler, Transport } from "./transport.ts";

/** Options of {@linkcode UdpTransport.bind}. */
export interface UdpTransportOptions {
  /** Interface to bind; default `127.0.0.1`. */
  hostname?: string;
  /** Port for both UDP and TCP; `0` (default) picks a free port free for both. */
  port?: number;
  /** Largest datagram sent or accepted; default 1400 (fits a 1500-byte Ethernet MTU). */
  maxPacketSize?: number;
  /** Largest request or reply on the reliable channel; default 16 MiB. */
  maxStreamBytes?: number;
  /** How long an inbound stream may take to deliver its request and take its reply; default 10 s. */
  inboundTimeoutMs?: number;
  /**
   * Concurrent inbound streams served. Past it, the oldest stream that has not yet sent its
   * request header is closed to make room (counted in `streamsEvicted`); when every stream is
   * past its header, the new one is refused (`streamsRefused`). Default 64.
   */
  maxInboundStreams?: number;
  /**
   * Concurrent inbound streams from one remote IP address; past it that address's oldest stream
   * still waiting for its header is closed, or the new one refused. Default 8.
   */
  maxInboundStreamsPerHost?: number;
  /**
   * How long an inbound stream may take to send its 4-byte request header; then it is closed
   * (`streamHeaderTimeouts`), so idle connections cannot hold slots. Default 2000 ms.
   */
  headerTimeoutMs?: number;
}

/** Counters of a {@linkcode UdpTransport}; all monotonically increasing. */
export interface UdpTransportStats {
  /** Datagrams received and handed to the packet handler. */
  packetsIn: number;
  /** Datagrams handed to the socket. */
  packetsOut: number;
  /** Bytes of datagrams received. */
  bytesIn: number;
  /** Bytes of datagrams sent. */
  bytesOut: number;
  /** Datagrams dropped on receive: oversize, or the packet handler threw. */
  packetsDropped: number;
  /** Sends that failed (bad address, socket error) and were dropped. */
  sendErrors: number;
  /** Errors raised by the socket's receive call (the loop continues). */
  receiveErrors: number;
  /** Reliable requests sent. */
  requestsOut: number;
  /** Reliable requests served. */
  requestsIn: number;
  /** Inbound streams refused or failed: oversize, timeout, too many, handler error, bad framing. */
  streamErrors: number;
  /** Inbound streams refused at accept: over `maxInboundStreams(PerHost)` with none evictable. */
  streamsRefused: number;
  /** Inbound streams closed before their header to make room for a new one (caps reached). */
  streamsEvicted: number;
  /** Inbound streams closed for not sending their header within `headerTimeoutMs`. */
  streamHeaderTimeouts: number;
}

/** One inbound stream being served. */
interface InboundStream {
  /** Remote IP address (the per-host limit's key). */
  readonly host: string;
  /** Whether its request header has arrived (it is then never evicted). */
  headerDone: boolean;
}

const DEFAULT_HOST = "127.0.0.1";
const DEFAULT_MAX_PACKET = 1400;
const DEFAULT_MAX_STREAM = 16 * 1024 * 1024;
/** Largest datagram the socket can hand us; anything above maxPacketSize is counted and dropped. */
const STATUS_OK = 0;
const STATUS_ERROR = 1;

/**
 * Error codes of the gossip stream channel's error replies, by wire number. The gossip wire has its
 * own table (not the RPC list's order), so a code added to RPC never renumbers gossip replies; a
 * number this node does not know reads as `internal`.
 */
const GOSSIP_ERROR_CODES: readonly RpcErrorCode[] = [
  "unavailable",
  "deadline_exceeded",
  "cancelled",
  "not_found",
  "invalid_argument",
  "resource_exhausted",
  "unauthenticated",
  "internal",
];

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array | undefined> {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await conn.read(buf.subarray(off));
    if (r === null) return undefined;
    off += r;
  }
  return buf;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function readU32(b: Uint8Array, at = 0): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at);
}

/**
 * {@linkcode Transport} over a real UDP socket (`Deno.listenDatagram`) and a TCP listener on the
 * same port for {@linkcode UdpTransport.request}. Needs `--unstable-net`.
 *
 * @example
 * ```ts
 * import { UdpTransport } from "@rpcnet/cluster";
 *
 * const a = await UdpTransport.bind({ hostname: "127.0.0.1", port: 0 });
 * const b = await UdpTransport.bind({ hostname: "127.0.0.1", port: 0 });
 * b.onPacket((data, from) => console.log(data.length, "bytes from", from));
 * b.onRequest((req) => Promise.resolve(req)); // echo
 * a.sendPacket(b.localAddr, new Uint8Array([1, 2, 3]));
 * console.log(await a.request(b.localAddr, new Uint8Array([4]), 1000));
 * await a.close();
 * await b.close();
 * ```
 */
export class UdpTransport implements Transport {
  /** `host:port` others reach this node at (UDP and TCP share the port). */
  readonly localAddr: string;
  /** Largest datagram sent or accepted. */
  readonly maxPacketSize: number;
  readonly #udp: Deno.DatagramConn;
  readonly #tcp: Deno.Listener;
  readonly #maxStream: number;
  readonly #inboundTimeout: number;
  readonly #maxInbound: number;
  readonly #maxInboundPerHost: number;
  readonly #headerTimeout: number;
  #onPacket: PacketHandler | undefined;
  #onRequest: StreamHandler | undefined;
  #closed = false;
  readonly #loops: Promise<void>[] = [];
  /** Inbound streams in accept order (oldest first), for eviction. */
  readonly #inbound = new Map<Deno.Conn, InboundStream>();
  readonly #outbound = new Set<Deno.Conn>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #stats: UdpTransportStats = {
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    packetsDropped: 0,
    sendErrors: 0,
    receiveErrors: 0,
    requestsOut: 0,
    requestsIn: 0,
    streamErrors: 0,
    streamsRefused: 0,
    streamsEvicted: 0,
    streamHeaderTimeouts: 0,
  };

  private constructor(
    udp: Deno.DatagramConn,
    tcp: Deno.Listener,
    hostname: string,
    port: number,
    options: UdpTransportOptions,
  ) {
    this.#udp = udp;
    this.#tcp = tcp;
    this.localAddr = formatAddr(hostname, port);
    this.maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET;
    this.#maxStream = options.maxStreamBytes ?? DEFAULT_MAX_STREAM;
    this.#inboundTimeout = options.inboundTimeoutMs ?? 10_000;
    this.#maxInbound = options.maxInboundStreams ?? 64;
    this.#maxInboundPerHost = options.maxInboundStreamsPerHost ?? 8;
    this.#headerTimeout = options.headerTimeoutMs ?? 2000;
    this.#loops.push(this.#receiveLoop(), this.#acceptLoop());
  }

  /**
   * Binds the UDP socket and the TCP listener on one port and starts receiving.
   *
   * @throws {RpcError} `invalid_argument` for bad options; `unavailable` when the port is taken.
   */
  static async bind(options: UdpTransportOptions = {}): Promise<UdpTransport> {
    const hostname = options.hostname ?? DEFAULT_HOST;
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RpcError("invalid_argument", `port must be an integer 0..65535, got ${port}`);
    }
    const mps = options.maxPacketSize ?? DEFAULT_MAX_PACKET;
    if (!Number.isInteger(mps) || mps < 64 || mps > 65507) {
      throw new RpcError("invalid_argument", `maxPacketSize must be 64..65507, got ${mps}`);
    }
    const ms = options.maxStreamBytes ?? DEFAULT_MAX_STREAM;
    if (!Number.isInteger(ms) || ms < 1 || ms > 0xffff_ffff) {
      throw new RpcError("invalid_argument", `maxStreamBytes must be 1..2^32-1, got ${ms}`);
    }
    checkInt("maxInboundStreams", options.maxInboundStreams, 64, 1, 65536);
    checkInt("maxInboundStreamsPerHost", options.maxInboundStreamsPerHost, 8, 1, 65536);
    checkDurationMs("headerTimeoutMs", options.headerTimeoutMs, 2000, 1);
    checkDurationMs("inboundTimeoutMs", options.inboundTimeoutMs, 10_000, 1);
    // With port 0 the UDP port the kernel picks may be taken for TCP: retry a few times.
    let lastError: unknown;
    for (let attempt = 0; attempt < (port === 0 ? 20 : 1); attempt++) {
      let udp: Deno.DatagramConn | undefined;
      try {
        udp = Deno.listenDatagram({ transport: "udp", hostname, port });
        const bound = (udp.addr as Deno.NetAddr).port;
        const tcp = Deno.listen({ transport: "tcp", hostname, port: bound });
        return await Promise.resolve(new UdpTransport(udp, tcp, hostname, bound, options));
      } catch (e) {
        lastError = e;
        try {
          udp?.close();
        } catch { /* already closed */ }
      }
    }
    throw new RpcError(
      "unavailable",
      `cannot bind UDP+TCP ${formatAddr(hostname, port)}: ${(lastError as Error)?.message}`,
      { cause: lastError },
    );
  }

  /** A snapshot of the counters. */
  stats(): UdpTransportStats {
    return { ...this.#stats };
  }

  /** Installs the single handler for incoming datagrams. */
  onPacket(handler: PacketHandler): void {
    this.#onPacket = handler;
  }

  /** Installs the single handler for incoming reliable requests. */
  onRequest(handler: StreamHandler): void {
    this.#onRequest = handler;
  }

  /**
   * Sends one datagram, fire-and-forget. Network errors and unparsable addresses (which come from
   * gossip, i.e. from the network) are counted in `sendErrors`, never thrown.
   *
   * @throws {RpcError} `invalid_argument` when `data` exceeds `maxPacketSize` (a caller bug).
   */
  sendPacket(to: string, data: Uint8Array): void {
    if (data.length > this.maxPacketSize) {
      throw new RpcError(
        "invalid_argument",
        `datagram of ${data.length} bytes exceeds maxPacketSize ${this.maxPacketSize}`,
      );
    }
    if (this.#closed) return;
    const addr = parseHostPort(to);
    if (!addr) {
      this.#stats.sendErrors++;
      return;
    }
    this.#stats.packetsOut++;
    this.#stats.bytesOut += data.length;
    const p = this.#udp.send(data, { transport: "udp", ...addr }).then(
      () => {},
      () => {
        this.#stats.sendErrors++;
      },
    );
    this.#track(p);
  }

  /**
   * Sends `request` over a fresh TCP connection and resolves with the reply.
   *
   * @throws {RpcError} `deadline_exceeded` after `timeoutMs`; `unavailable` when the peer cannot
   * be reached, closes early or the transport is closed; `resource_exhausted` when the reply
   * exceeds `maxStreamBytes`; `invalid_argument` for a bad address or an oversize request; an
   * error the peer's handler raised keeps its `RpcError` code.
   */
  request(to: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const p = this.#request(to, request, timeoutMs);
    this.#track(p);
    return p;
  }

  async #request(to: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.#closed) throw new RpcError("unavailable", "transport is closed");
    const addr = parseHostPort(to);
    if (!addr) throw new RpcError("invalid_argument", `bad address '${to}', expected host:port`);
    if (request.length > this.#maxStream) {
      throw new RpcError(
        "invalid_argument",
        `request of ${request.length} bytes exceeds maxStreamBytes ${this.#maxStream}`,
      );
    }
    this.#stats.requestsOut++;
    let conn: Deno.Conn | undefined;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        conn?.close();
      } catch { /* already closed */ }
    }, Math.max(0, timeoutMs));
    try {
      const c = await Deno.connect({ transport: "tcp", ...addr });
      if (timedOut || this.#closed) {
        c.close();
        throw new Error("timed out while connecting");
      }
      conn = c;
      this.#outbound.add(c);
      await writeAll(c, u32(request.length));
      await writeAll(c, request);
      const head = await readExactly(c, 5);
      if (!head) throw new Error("peer closed the stream before replying");
      if (head[0] !== STATUS_OK && head[0] !== STATUS_ERROR) {
        // Something else listens there (an HTTP server, another protocol): say so rather
        // than read its first bytes as a length.
        const text = String.fromCharCode(...head).replace(/[^\x20-\x7e]/g, "?");
        throw new RpcError(
          "invalid_argument",
          `${to} did not answer with the rpcnet gossip protocol (first bytes ${
            JSON.stringify(text)
          }): is that the node's gossip port?`,
        );
      }
      const len = readU32(head, 1);
      if (len > this.#maxStream) {
        throw new RpcError(
          "resource_exhausted",
          `reply of ${len} bytes from ${to} exceeds maxStreamBytes ${this.#maxStream}`,
        );
      }
      const body = await readExactly(c, len);
      if (!body) throw new Error("peer closed the stream mid-reply");
      if (head[0] === STATUS_OK) return body;
      const code = GOSSIP_ERROR_CODES[body[0]] ?? "internal";
      throw new RpcError(code, `peer ${to}: ${new TextDecoder().decode(body.subarray(1))}`);
    } catch (e) {
      if (e instanceof RpcError) throw e;
      if (timedOut) {
        throw new RpcError("deadline_exceeded", `request to ${to} timed out after ${timeoutMs} ms`);
      }
      throw new RpcError("unavailable", `request to ${to} failed: ${(e as Error)?.message}`, {
        cause: e,
      });
    } finally {
      clearTimeout(timer);
      if (conn) {
        this.#outbound.delete(conn);
        try {
          conn.close();
        } catch { /* closed by the timer */ }
      }
    }
  }

  /** Closes both sockets, aborts open streams and waits for the loops to finish. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) {
      await Promise.allSettled(this.#loops);
      return;
    }
    this.#closed = true;
    for (const c of [this.#udp, this.#tcp, ...this.#inbound.keys(), ...this.#outbound]) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await Promise.allSettled(this.#loops);
    await Promise.allSettled([...this.#pending]);
  }

  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    const done = () => this.#pending.delete(p);
    p.then(done, done);
  }

  async #receiveLoop(): Promise<void> {
    let consecutiveErrors = 0;
    while (!this.#closed) {
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await this.#udp.receive();
        consecutiveErrors = 0;
      } catch {
        if (this.#closed) return;
        this.#stats.receiveErrors++;
        // A broken socket would otherwise spin: back off briefly after repeated errors.
        if (++consecutiveErrors > 10) await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      if (data.length > this.maxPacketSize) {
        this.#stats.packetsDropped++;
        continue;
      }
      this.#stats.packetsIn++;
      this.#stats.bytesIn += data.length;
      const handler = this.#onPacket;
      if (!handler) continue;
      try {
        const na = from as Deno.NetAddr;
        handler(data, formatAddr(na.hostname, na.port));
      } catch {
        this.#stats.packetsDropped++;
      }
    }
  }

  async #acceptLoop(): Promise<void> {
    const serving = new Set<Promise<void>>();
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#tcp.accept();
      } catch {
        if (this.#closed) break;
        this.#stats.streamErrors++;
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      if (this.#closed || !this.#admit(conn)) {
        this.#stats.streamErrors++;
        conn.close();
        continue;
      }
      const p = this.#serve(conn).finally(() => {
        this.#inbound.delete(conn);
        serving.delete(p);
        try {
          conn.close();
        } catch { /* already closed */ }
      });
      serving.add(p);
    }
    await Promise.allSettled([...serving]);
  }

  /**
   * Admits an accepted stream under the per-host and total caps, evicting the oldest stream
   * still waiting for its header (of that host, or of anyone) when a cap is reached: idle
   * connections cannot starve real requests, whose header follows the connect at once.
   */
  #admit(conn: Deno.Conn): boolean {
    const host = (conn.remoteAddr as Deno.NetAddr).hostname;
    let fromHost = 0;
    for (const s of this.#inbound.values()) if (s.host === host) fromHost++;
    if (fromHost >= this.#maxInboundPerHost && !this.#evictIdle(host)) {
      this.#stats.streamsRefused++;
      return false;
    }
    if (this.#inbound.size >= this.#maxInbound && !this.#evictIdle(undefined)) {
      this.#stats.streamsRefused++;
      return false;
    }
    this.#inbound.set(conn, { host, headerDone: false });
    return true;
  }

  /** Closes the oldest stream (of `host`, when given) that has not sent its header. */
  #evictIdle(host: string | undefined): boolean {
    for (const [c, s] of this.#inbound) {
      if (s.headerDone || (host !== undefined && s.host !== host)) continue;
      this.#inbound.delete(c);
      this.#stats.streamsEvicted++;
      try {
        c.close();
      } catch { /* already closed */ }
      return true;
    }
    return false;
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const close = () => {
      try {
        conn.close();
      } catch { /* already closed */ }
    };
    let timer = setTimeout(() => {
      this.#stats.streamHeaderTimeouts++;
      close();
    }, this.#headerTimeout);
    try {
      const head = await readExactly(conn, 4);
      if (!head) throw new Error("closed before the request length");
      clearTimeout(timer);
      const stream = this.#inbound.get(conn);
      if (stream !== undefined) stream.headerDone = true;
      timer = setTimeout(() => {
        this.#stats.streamErrors++;
        close();
      }, this.#inboundTimeout);
      const len = readU32(head);
      if (len > this.#maxStream) {
        this.#stats.streamErrors++;
        await this.#replyError(
          conn,
          new RpcError("resource_exhausted", `request of ${len} bytes exceeds ${this.#maxStream}`),
        );
        return;
      }
      const body = await readExactly(conn, len);
      if (!body) throw new Error("closed mid-request");
      const na = conn.remoteAddr as Deno.NetAddr;
      const from = formatAddr(na.hostname, na.port);
      this.#stats.requestsIn++;
      const handler = this.#onRequest;
      let reply: Uint8Array;
      try {
        if (!handler) throw new RpcError("unavailable", "no request handler installed");
        reply = await handler(body, from);
        if (!(reply instanceof Uint8Array)) {
          throw new RpcError("internal", "handler returned no bytes");
        }
        if (reply.length > this.#maxStream) {
          throw new RpcError("resource_exhausted", `reply of ${reply.length} bytes too large`);
        }
      } catch (e) {
        this.#stats.streamErrors++;
        await this.#replyError(conn, e);
        return;
      }
      const out = new Uint8Array(5 + reply.length);
      out[0] = STATUS_OK;
      out.set(u32(reply.length), 1);
      out.set(reply, 5);
      await writeAll(conn, out);
    } catch {
      if (!this.#closed) this.#stats.streamErrors++;
    } finally {
      clearTimeout(timer);
    }
  }

  async #replyError(conn: Deno.Conn, e: unknown): Promise<void> {
    const code = e instanceof RpcError ? e.code : "internal";
    const msg = new TextEncoder().encode(String((e as Error)?.message ?? e).slice(0, 512));
    const out = new Uint8Array(6 + msg.length);
    out[0] = STATUS_ERROR;
    out.set(u32(msg.length + 1), 1);
    const wire = GOSSIP_ERROR_CODES.indexOf(code);
    out[5] = wire >= 0 ? wire : GOSSIP_ERROR_CODES.indexOf("internal");
    out.set(msg, 6);
    try {
      await writeAll(conn, out);
    } catch { /* peer went away */ }
  }
}
