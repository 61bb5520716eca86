/**
 * The raw framed echo client of the "fanout" bench: the ceiling of a caller fanning out over
 * several servers (`bench/rpc.ts serve-raw`, or `serve-raw-tls` for TLS over TCP), without any
 * RPC or cluster layer.
 *
 * @module
 */
import { CallTable } from "../src/rpc/call_table.ts";
/** Writes all of `b` to `conn` (a write may take part of it). */
async function writeAllTo(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  for (let off = 0; off < b.length;) off += await conn.write(b.subarray(off));
}

/**
 * Framed echo over one bidirectional stream per server, every connection on one endpoint (as
 * the `ClusterClient` pool opens them), writes coalesced per microtask per connection.
 */
export class RawFanout {
  #lanes: RawLane[];
  #next = 0;
  #endpoint: Deno.QuicEndpoint | undefined;

  private constructor(lanes: RawLane[], endpoint: Deno.QuicEndpoint | undefined) {
    this.#lanes = lanes;
    this.#endpoint = endpoint;
  }

  static async connect(ports: number[], ca: string): Promise<RawFanout> {
    const endpoint = new Deno.QuicEndpoint({ hostname: "0.0.0.0", port: 0 });
    const lanes = await Promise.all(ports.map(async (port) => {
      const conn = await Deno.connectQuic({
        hostname: "127.0.0.1",
        port,
        alpnProtocols: ["rpcnet-bench-raw"],
        caCerts: [ca],
        serverName: "localhost",
        endpoint,
        // As the RPC client does: between this system's rounds the connection idles for longer
        // than QUIC's idle timeout.
        keepAliveInterval: 2000,
        maxIdleTimeout: 10_000,
      });
      const s = await conn.createBidirectionalStream();
      return new RawLane(s.readable, s.writable, () => conn.close({ closeCode: 0, reason: "" }));
    }));
    return new RawFanout(lanes, endpoint);
  }

  /** The same over TLS/TCP, one connection per server. */
  static async connectTls(ports: number[], ca: string): Promise<RawFanout> {
    const lanes = await Promise.all(ports.map(async (port) => {
      const conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port,
        caCerts: [ca],
        serverName: "localhost",
      } as Deno.ConnectTlsOptions);
      // Read and written directly, as RPC's TCP lanes do (not through its streams).
      return new RawLane(conn, conn, () => conn.close());
    }));
    return new RawFanout(lanes, undefined);
  }

  call(): Promise<void> {
    return this.#lanes[this.#next++ % this.#lanes.length].call();
  }

  close(): Promise<void> {
    for (const l of this.#lanes) l.close();
    this.#endpoint?.close();
    return Promise.resolve();
  }
}

const FRAME = 72;

class RawLane {
  #close: () => void;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #conn: Deno.Conn | undefined;
  #writing = Promise.resolve();
  // As the RPC client keeps its calls (not a Map: see src/rpc/call_table.ts).
  #waiting = new CallTable<() => void>();
  #rejects = new CallTable<(e: Error) => void>();
  #lost = false;
  #queued: number[] = [];
  #scheduled = false;
  #nextId = 1;

  constructor(
    readable: ReadableStream<Uint8Array> | Deno.Conn,
    writable: WritableStream<Uint8Array> | Deno.Conn,
    close: () => void,
  ) {
    this.#close = close;
    if (writable instanceof WritableStream) this.#writer = writable.getWriter();
    else this.#conn = writable;
    const reader = readable instanceof ReadableStream
      ? readable.getReader({ mode: "byob" })
      : undefined;
    // A lost connection fails the calls waiting on it instead of leaving them pending.
    this.#readLoop(reader).catch(() => {}).finally(() => {
      this.#lost = true;
      for (const id of this.#rejects.ids()) {
        this.#waiting.take(id);
        this.#rejects.take(id)!(new Error("raw connection lost"));
      }
    });
  }

  call(): Promise<void> {
    if (this.#lost) return Promise.reject(new Error("raw connection lost"));
    const id = this.#nextId;
    this.#nextId = id === 0xffff_ffff ? 1 : id + 1;
    const p = new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, resolve);
      this.#rejects.set(id, reject);
    });
    this.#queued.push(id);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
    return p;
  }

  #flush(): void {
    this.#scheduled = false;
    const b = new Uint8Array(FRAME * this.#queued.length);
    const dv = new DataView(b.buffer);
    this.#queued.forEach((id, i) => {
      dv.setUint32(i * FRAME, FRAME - 4);
      dv.setUint32(i * FRAME + 4, id);
    });
    this.#queued = [];
    if (this.#writer) this.#writer.write(b).catch(() => {});
    else this.#writing = this.#writing.then(() => writeAllTo(this.#conn!, b)).catch(() => {});
  }

  async #readLoop(reader: ReadableStreamBYOBReader | undefined): Promise<void> {
    let buf = new Uint8Array(64 * 1024);
    let start = 0, filled = 0;
    for (;;) {
      if (start === filled) start = filled = 0;
      else if (buf.length - filled < 4096) {
        buf.copyWithin(0, start, filled);
        filled -= start;
        start = 0;
      }
      if (reader) {
        const { value, done } = await reader.read(
          new Uint8Array(buf.buffer, filled, buf.length - filled),
        );
        if (done || !value) return;
        buf = new Uint8Array(value.buffer);
        filled += value.length;
      } else {
        const n = await this.#conn!.read(new Uint8Array(buf.buffer, filled, buf.length - filled));
        if (n === null) return;
        filled += n;
      }
      while (filled - start >= FRAME) {
        const id = ((buf[start + 4] << 24) | (buf[start + 5] << 16) | (buf[start + 6] << 8) |
          buf[start + 7]) >>> 0;
        start += FRAME;
        const resolve = this.#waiting.take(id);
        this.#rejects.take(id);
        resolve?.();
      }
    }
  }

  close(): void {
    try {
      this.#close();
    } catch { /* already closed */ }
  }
}
