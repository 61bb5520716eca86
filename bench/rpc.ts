/**
 * Bench section "rpc": RPC over QUIC against its ceiling and against gRPC, in one run.
 *
 * (a) ceiling: raw Deno QUIC echo over one long-lived stream, writes coalesced per microtask;
 * (b) `RpcClient` unary 64 B echo at 1, 64 and 256 calls in flight; (c) 4 KiB and 1 MiB
 * payloads; (d) `@grpc/grpc-js` unary echo under Node (TLS, like ours); (e) resident memory
 * per idle client connection, client side and server side. Every server runs in its own child
 * process, the clients in this one.
 *
 * @module
 */

import { fileURLToPath as fromFileUrl } from "node:url";
import { createDevCa, issueDevCertificate, RpcClient, RpcServer } from "../mod.ts";
import { type BenchRow, type BenchSection, median, quantile } from "./table.ts";
import { ensureNodeBaselines } from "./fanout.ts";

const SELF = fromFileUrl(import.meta.url);
const CONFIG = fromFileUrl(new URL("../deno.json", import.meta.url));
const NODE_DIR = fromFileUrl(new URL("./node/", import.meta.url)).replace(/\/?$/, "/");
const RAW_ALPN = "rpcnet-bench-raw";
const DURATION_MS = Number(Deno.env.get("RPC_BENCH_MS") ?? 2000);

type Tls = { cert: string; key: string; ca: string };

function tlsEnv(tls: Tls): Record<string, string> {
  return { RPC_BENCH_CERT: tls.cert, RPC_BENCH_KEY: tls.key, RPC_BENCH_CA: tls.ca };
}

function tlsFromEnv(): Tls {
  return {
    cert: Deno.env.get("RPC_BENCH_CERT")!,
    key: Deno.env.get("RPC_BENCH_KEY")!,
    ca: Deno.env.get("RPC_BENCH_CA")!,
  };
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  reader.cancel().catch(() => {});
  return text.trim();
}

/** Starts `mode` of this file in a child Deno process; resolves with its first stdout line. */
async function child(mode: string, tls: Tls, extra: string[] = []) {
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-net",
      "--v8-flags=--expose-gc",
      "--config",
      CONFIG,
      SELF,
      mode,
      ...extra,
    ],
    env: tlsEnv(tls),
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const line = await firstLine(proc.stdout);
  return {
    line,
    stop: async () => {
      try {
        proc.kill("SIGKILL");
      } catch { /* exited */ }
      await proc.status;
    },
  };
}

// ---- child modes ---------------------------------------------------------------------------

/** A raw QUIC server (no RPC) running `onStream` on every bidirectional stream. */
async function serveRawQuic(onStream: (s: Deno.QuicBidirectionalStream) => void): Promise<void> {
  const tls = tlsFromEnv();
  const ep = new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
  const listener = ep.listen({ alpnProtocols: [RAW_ALPN], cert: tls.cert, key: tls.key });
  console.log(ep.addr.port);
  for await (const incoming of listener) {
    const conn = await incoming.accept();
    (async () => {
      for await (const s of conn.incomingBidirectionalStreams) onStream(s);
    })().catch(() => {});
  }
}

/**
 * The `hold` workload of the "scale" section without any RPC layer: at most `capacity` frames
 * at once per connection, each echoed after a `ms` timer, the rest queued FIFO (as
 * `bench/fanout_worker.ts`'s `hold` handler does).
 */
export interface Hold {
  ms: number;
  capacity: number;
}

/** `--hold-ms N --capacity N` after the mode: echo each frame after a timer (see {@link Hold}). */
function holdFromArgs(args: string[]): Hold | undefined {
  const at = args.indexOf("--hold-ms");
  if (at < 0) return undefined;
  const cap = args.indexOf("--capacity");
  return { ms: Number(args[at + 1]), capacity: cap < 0 ? 8 : Number(args[cap + 1]) };
}

/** The framed echo ceiling over QUIC. */
function serveRaw(hold?: Hold): Promise<void> {
  return serveRawQuic((s) => framedEcho(s.readable, s.writable, hold).catch(() => {}));
}

/** The same framed echo over TLS/TCP: the ceiling of RPC's TCP lanes. */
async function serveRawTls(hold?: Hold): Promise<void> {
  const tls = tlsFromEnv();
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: tls.cert, key: tls.key });
  console.log((listener.addr as Deno.NetAddr).port);
  // The connection read and written directly, as RPC's TCP lanes do (not through its streams).
  for await (const conn of listener) framedEcho(conn, conn, hold).catch(() => {});
}

/** Writes all of `b` to `conn` (a write may take part of it). */
async function writeAllTo(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  for (let off = 0; off < b.length;) off += await conn.write(b.subarray(off));
}

/**
 * Framed echo: parses each `[u32 len][body]` frame and queues it into a batch written once per
 * microtask (the transport pattern the RPC layer builds on); with `hold`, each frame waits for
 * a slot and a timer first. Reads and writes a QUIC stream's streams, or a TLS connection's own
 * methods (both arguments the connection).
 */
async function framedEcho(
  readable: ReadableStream<Uint8Array> | Deno.Conn,
  writable: WritableStream<Uint8Array> | Deno.Conn,
  hold?: Hold,
): Promise<void> {
  const conn = readable instanceof ReadableStream ? undefined : readable;
  const reader = readable instanceof ReadableStream
    ? readable.getReader({ mode: "byob" })
    : undefined;
  const writer = writable instanceof WritableStream ? writable.getWriter() : undefined;
  let writing = Promise.resolve();
  let buf = new Uint8Array(64 * 1024);
  let start = 0, end = 0;
  let out: Uint8Array[] = [];
  let scheduled = false;
  let running = 0;
  const queued: Uint8Array[] = [];
  const flush = () => {
    scheduled = false;
    let n = 0;
    for (const f of out) n += f.length;
    const b = new Uint8Array(n);
    let o = 0;
    for (const f of out) {
      b.set(f, o);
      o += f.length;
    }
    out = [];
    if (writer) writer.write(b).catch(() => {});
    else writing = writing.then(() => writeAllTo(conn!, b)).catch(() => {});
  };
  for (;;) {
    if (start === end) start = end = 0;
    else if (buf.length - end < 4096) {
      buf.copyWithin(0, start, end);
      end -= start;
      start = 0;
    }
    if (conn) {
      const n = await conn.read(new Uint8Array(buf.buffer, end, buf.length - end));
      if (n === null) return;
      end += n;
    } else {
      const { value, done } = await reader!.read(new Uint8Array(buf.buffer, end, buf.length - end));
      if (done || !value) return;
      buf = new Uint8Array(value.buffer);
      end += value.length;
    }
    while (end - start >= 4) {
      const len = ((buf[start] << 24) | (buf[start + 1] << 16) | (buf[start + 2] << 8) |
        buf[start + 3]) >>> 0;
      if (end - start < 4 + len) break;
      const frame = buf.slice(start, start + 4 + len);
      start += 4 + len;
      if (hold) admit(frame);
      else send(frame);
    }
  }

  function send(frame: Uint8Array): void {
    out.push(frame);
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  }

  function admit(frame: Uint8Array): void {
    if (running < hold!.capacity) begin(frame);
    else queued.push(frame);
  }

  function begin(frame: Uint8Array): void {
    running++;
    setTimeout(() => {
      send(frame);
      running--;
      const next = queued.shift();
      if (next) begin(next);
    }, hold!.ms);
  }
}

/** Bulk ceiling: every stream echoes its bytes back as they come (no framing at all). */
function serveRawBulk(): Promise<void> {
  return serveRawQuic((s) => s.readable.pipeTo(s.writable).catch(() => {}));
}

async function serveRpc(): Promise<void> {
  const tls = tlsFromEnv();
  const server = new RpcServer({
    tls: { certPem: tls.cert, keyPem: tls.key },
    maxConcurrentCallsPerConnection: 100_000,
  })
    .register("echo", (req) => req)
    .register("rss", () => {
      (globalThis as { gc?: () => void }).gc?.();
      return Deno.memoryUsage().rss;
    });
  await server.start();
  console.log(server.addr.port);
}

async function memClients(port: number, n: number): Promise<void> {
  const tls = tlsFromEnv();
  const gc = () => (globalThis as { gc?: () => void }).gc?.();
  const open = () =>
    RpcClient.connect({ hostname: "127.0.0.1", port, caCerts: [tls.ca], serverName: "localhost" });
  const warm = await open(); // load and JIT everything first
  await warm.call("echo", new Uint8Array(64));
  const serverBefore = await warm.call<number>("rss", null);
  gc();
  await new Promise((r) => setTimeout(r, 200));
  gc();
  const before = Deno.memoryUsage().rss;
  const clients: RpcClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await open();
    await c.call("echo", new Uint8Array(64));
    clients.push(c);
  }
  await new Promise((r) => setTimeout(r, 500));
  gc();
  const after = Deno.memoryUsage().rss;
  const serverAfter = await warm.call<number>("rss", null);
  console.log(JSON.stringify({
    clientKiB: (after - before) / n / 1024,
    serverKiB: (serverAfter - serverBefore) / n / 1024,
  }));
  for (const c of clients) await c.close();
  await warm.close();
}

// ---- measurements --------------------------------------------------------------------------

interface Load {
  rps: number;
  p50us: number;
  p99us: number;
}

/** A QUIC connection to a raw server of this file on loopback. */
async function connectRaw(port: number, ca: string): Promise<Deno.QuicConn> {
  return await Deno.connectQuic({
    hostname: "127.0.0.1",
    port,
    alpnProtocols: [RAW_ALPN],
    caCerts: [ca],
    serverName: "localhost",
  });
}

/**
 * (a) `[u32 len][u32 id][64 B]` frames echoed by the raw framed server; `inflight` requests kept
 * outstanding, responses matched by id, writes coalesced per microtask.
 */
async function rawEcho(port: number, ca: string, inflight: number, ms: number): Promise<Load> {
  const conn = await connectRaw(port, ca);
  const s = await conn.createBidirectionalStream();
  const writer = s.writable.getWriter();
  const reader = s.readable.getReader({ mode: "byob" });
  const FRAME = 72;
  const sentAt = new Map<number, number>();
  let nextId = 0;
  let queued: number[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const b = new Uint8Array(FRAME * queued.length);
    const dv = new DataView(b.buffer);
    queued.forEach((id, i) => {
      dv.setUint32(i * FRAME, FRAME - 4);
      dv.setUint32(i * FRAME + 4, id);
    });
    queued = [];
    writer.write(b).catch(() => {});
  };
  const send = () => {
    const id = nextId++;
    sentAt.set(id, inflight === 1 ? performance.now() : 0);
    queued.push(id);
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  };
  const lat: number[] = [];
  let done = 0;
  // Both harnesses stop on a timer flag and read the clock only to measure latency (1 in
  // flight), so neither pays for clock reads per call.
  let running = true;
  const timer = setTimeout(() => running = false, ms);
  const t0 = performance.now();
  for (let i = 0; i < inflight; i++) send();
  let buf = new Uint8Array(64 * 1024);
  let start = 0, filled = 0;
  while (sentAt.size > 0) {
    if (start === filled) start = filled = 0;
    else if (buf.length - filled < 4096) {
      buf.copyWithin(0, start, filled);
      filled -= start;
      start = 0;
    }
    const { value, done: eof } = await reader.read(
      new Uint8Array(buf.buffer, filled, buf.length - filled),
    );
    if (eof || !value) break;
    buf = new Uint8Array(value.buffer);
    filled += value.length;
    const now = inflight === 1 ? performance.now() : 0;
    while (filled - start >= FRAME) {
      const id = ((buf[start + 4] << 24) | (buf[start + 5] << 16) | (buf[start + 6] << 8) |
        buf[start + 7]) >>> 0;
      start += FRAME;
      const at = sentAt.get(id)!;
      sentAt.delete(id);
      if (inflight === 1) lat.push((now - at) * 1000);
      done++;
      if (running) send();
    }
  }
  const rps = done / ((performance.now() - t0) / 1000);
  clearTimeout(timer);
  reader.releaseLock();
  conn.close({ closeCode: 0, reason: "" });
  conn.endpoint.close();
  return { rps, p50us: quantile(lat, 0.5), p99us: quantile(lat, 0.99) };
}

/**
 * (c) the bulk ceiling: `inflight` streams on one QUIC connection, each writing `size` bytes and
 * reading them back, in a loop (the RPC client spreads large calls over its bulk lanes alike).
 */
async function rawBulk(port: number, ca: string, size: number, inflight: number, ms: number) {
  const conn = await connectRaw(port, ca);
  const chunk = new Uint8Array(size).fill(7);
  let done = 0;
  let running = true;
  const timer = setTimeout(() => running = false, ms);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, async () => {
    const s = await conn.createBidirectionalStream();
    const writer = s.writable.getWriter();
    const reader = s.readable.getReader({ mode: "byob" });
    let buf = new Uint8Array(256 * 1024);
    while (running) {
      const wrote = writer.write(chunk);
      let got = 0;
      while (got < size) {
        const { value, done: eof } = await reader.read(buf);
        if (eof || !value) return;
        got += value.length;
        buf = new Uint8Array(value.buffer);
      }
      await wrote;
      done++;
    }
  }));
  const rate = done / ((performance.now() - t0) / 1000);
  clearTimeout(timer);
  conn.close({ closeCode: 0, reason: "" });
  conn.endpoint.close();
  return rate;
}

/** (b, c) `inflight` callers each looping `client.call("echo", payload)`. */
async function rpcEcho(
  client: RpcClient,
  payload: Uint8Array,
  inflight: number,
  ms: number,
  latencies?: number[],
): Promise<Load> {
  const lat: number[] = latencies ?? [];
  let done = 0;
  let running = true;
  const timer = setTimeout(() => running = false, ms);
  const t0 = performance.now();
  const worker = async () => {
    while (running) {
      if (inflight === 1) {
        const s = performance.now();
        await client.call("echo", payload);
        lat.push((performance.now() - s) * 1000);
      } else await client.call("echo", payload);
      done++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  clearTimeout(timer);
  return {
    rps: done / ((performance.now() - t0) / 1000),
    p50us: quantile(lat, 0.5),
    p99us: quantile(lat, 0.99),
  };
}

/** (d) the Node gRPC baseline, installed on demand. */
async function grpcBaseline(tls: Tls, ms: number): Promise<
  | {
    rps1: number;
    p50us: number;
    p99us: number;
    rps64: number;
    rps256: number;
    node: string;
    version: string;
  }
  | string
> {
  try {
    const problem = await ensureNodeBaselines();
    if (problem) return problem;
    const out = await new Deno.Command("node", {
      args: [`${NODE_DIR}grpc_echo.mjs`, "bench", String(ms), "64"],
      env: tlsEnv(tls),
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) return "node grpc bench failed";
    return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  } catch (e) {
    return `not run: ${(e as Error).message}`;
  }
}

const ROUNDS = 5;

/** Runs the section. */
export async function run(): Promise<BenchSection> {
  const ca = await createDevCa();
  const leaf = await issueDevCertificate(ca);
  const tls: Tls = { cert: leaf.certPem, key: leaf.keyPem, ca: ca.certPem };
  const ms = DURATION_MS;
  const slice = Math.max(200, Math.round(ms / 4));

  // (a) and (b) interleaved in short rounds, both servers up, so that load from other work on
  // the machine hits both alike; ratios are medians of per-round ratios.
  const raw = await child("serve-raw", tls);
  const srv = await child("serve-rpc", tls);
  const rawPort = Number(raw.line);
  const port = Number(srv.line);
  const client = await RpcClient.connect({
    hostname: "127.0.0.1",
    port,
    caCerts: [tls.ca],
    serverName: "localhost",
  });
  const p64 = new Uint8Array(64);
  await rawEcho(rawPort, tls.ca, 16, 300); // warm-up
  await rpcEcho(client, p64, 16, 500);
  const levels = [1, 64, 256] as const;
  const a: Record<number, Load[]> = { 1: [], 64: [], 256: [] };
  const b: Record<number, Load[]> = { 1: [], 64: [], 256: [] };
  const lat1: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of levels) {
      a[k].push(await rawEcho(rawPort, tls.ca, k, slice));
      b[k].push(await rpcEcho(client, p64, k, slice, k === 1 ? lat1 : undefined));
    }
  }
  const c4k = await rpcEcho(client, new Uint8Array(4096), 16, ms);
  // 1 MiB: RpcClient against the raw stream echo, interleaved rounds.
  const bulk = await child("serve-raw-bulk", tls);
  const MiB = 1 << 20;
  const mb = (rps: number) => (rps * MiB) / 1e6;
  await rawBulk(Number(bulk.line), tls.ca, MiB, 4, 300); // warm-up
  await rpcEcho(client, new Uint8Array(MiB), 4, 300);
  const bulkRaw: number[] = [];
  const bulkRpc: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    bulkRaw.push(mb(await rawBulk(Number(bulk.line), tls.ca, MiB, 4, slice)));
    bulkRpc.push(mb((await rpcEcho(client, new Uint8Array(MiB), 4, slice)).rps));
  }
  await bulk.stop();
  await client.close();
  await raw.stop();
  await srv.stop();

  // (e) on a fresh server, so earlier load does not blur its resident size
  const memSrv = await child("serve-rpc", tls);
  const memChild = await child("mem-clients", tls, [memSrv.line, "50"]);
  const mem = JSON.parse(memChild.line) as { clientKiB: number; serverKiB: number };
  await memChild.stop();
  await memSrv.stop();

  // (d)
  const d = await grpcBaseline(tls, ms);

  const med = (xs: Load[]) => median(xs.map((x) => x.rps));
  const spread = (xs: Load[]) => {
    const v = xs.map((x) => x.rps);
    return `${ROUNDS} rounds of ${slice} ms, min–max ${Math.min(...v).toFixed(0)}–${
      Math.max(...v).toFixed(0)
    }`;
  };
  const ratio = (k: number) => median(b[k].map((x, i) => x.rps / a[k][i].rps));
  const rows: BenchRow[] = [
    {
      name: "(a) raw QUIC echo 64 B, 1 in flight",
      value: med(a[1]),
      unit: "req/s",
      note: `p50 ${median(a[1].map((x) => x.p50us)).toFixed(0)} µs, p99 ${
        median(a[1].map((x) => x.p99us)).toFixed(0)
      } µs`,
    },
    {
      name: "(a) raw QUIC echo 64 B, 64 in flight",
      value: med(a[64]),
      unit: "req/s",
      note: `ceiling: one stream, framed, id-matched, coalesced writes; ${spread(a[64])}`,
    },
    {
      name: "(a) raw QUIC echo 64 B, 256 in flight",
      value: med(a[256]),
      unit: "req/s",
      note: spread(a[256]),
    },
    {
      name: "(b) RpcClient unary 64 B, 1 in flight",
      value: med(b[1]),
      unit: "req/s",
      note: spread(b[1]),
    },
    {
      name: "(b) RpcClient unary 64 B, 1 in flight, p50",
      value: quantile(lat1, 0.5),
      unit: "µs",
      note: `${lat1.length} calls`,
    },
    { name: "(b) RpcClient unary 64 B, 1 in flight, p99", value: quantile(lat1, 0.99), unit: "µs" },
    {
      name: "(b) RpcClient unary 64 B, 64 in flight",
      value: med(b[64]),
      unit: "req/s",
      note: spread(b[64]),
    },
    {
      name: "(b) RpcClient unary 64 B, 256 in flight",
      value: med(b[256]),
      unit: "req/s",
      note: spread(b[256]),
    },
    {
      name: "(c) RpcClient 4 KiB echo, 16 in flight",
      value: (c4k.rps * 4096) / 1e6,
      unit: "MB/s",
      note: `${c4k.rps.toFixed(0)} req/s, payload bytes one way`,
    },
    {
      name: "(c) raw QUIC stream echo 1 MiB, 4 streams (bulk ceiling)",
      value: median(bulkRaw),
      unit: "MB/s",
      note: `payload bytes one way; min–max ${Math.min(...bulkRaw).toFixed(0)}–` +
        `${Math.max(...bulkRaw).toFixed(0)}`,
    },
    {
      name: "(c) RpcClient 1 MiB echo, 4 in flight",
      value: median(bulkRpc),
      unit: "MB/s",
      note: `payload bytes one way; min–max ${Math.min(...bulkRpc).toFixed(0)}–` +
        `${Math.max(...bulkRpc).toFixed(0)}`,
    },
    (() => {
      const per = bulkRpc.map((x, i) => x / bulkRaw[i]);
      const value = median(per);
      return {
        name: "ratio RpcClient 1 MiB / raw QUIC stream echo 1 MiB",
        value,
        unit: "x",
        target: ">= 0.8",
        met: value >= 0.8,
        note: `per-round ${per.map((x) => x.toFixed(2)).join(", ")}`,
      };
    })(),
  ];
  if (typeof d === "string") {
    rows.push({ name: "(d) @grpc/grpc-js unary 64 B", value: NaN, unit: "req/s", note: d });
  } else {
    rows.push(
      {
        name: "(d) @grpc/grpc-js unary 64 B, 1 in flight",
        value: d.rps1,
        unit: "req/s",
        note: `Node ${d.node}, grpc-js ${d.version}, TLS; p50 ${d.p50us.toFixed(0)} µs, p99 ${
          d.p99us.toFixed(0)
        } µs`,
      },
      { name: "(d) @grpc/grpc-js unary 64 B, 64 in flight", value: d.rps64, unit: "req/s" },
      { name: "(d) @grpc/grpc-js unary 64 B, 256 in flight", value: d.rps256, unit: "req/s" },
    );
  }
  rows.push(
    {
      name: "(e) resident memory per idle connection, client process",
      value: mem.clientKiB,
      unit: "KiB",
      note: "50 RpcClients, each with its own QUIC endpoint",
    },
    {
      name: "(e) resident memory per idle connection, server process",
      value: mem.serverKiB,
      unit: "KiB",
      note: "RSS delta / 50 after GC",
    },
  );
  const r64a = ratio(64);
  rows.push(
    {
      name: "ratio b64 / a64 (RpcClient vs raw ceiling)",
      value: r64a,
      unit: "x",
      target: ">= 0.7",
      met: r64a >= 0.7,
      note: "median of per-round ratios",
    },
    { name: "ratio b1 / a1", value: ratio(1), unit: "x" },
    { name: "ratio b256 / a256", value: ratio(256), unit: "x" },
  );
  if (typeof d !== "string") {
    const r64d = med(b[64]) / d.rps64;
    rows.push(
      {
        name: "ratio b64 / d64 (RpcClient vs gRPC)",
        value: r64d,
        unit: "x",
        target: ">= 3",
        met: r64d >= 3,
      },
      { name: "ratio b1 / d1", value: med(b[1]) / d.rps1, unit: "x" },
    );
  }
  return { title: "rpc: RPC over QUIC (64 B echo unless noted; servers in child processes)", rows };
}

if (import.meta.main) {
  const [mode, ...args] = Deno.args;
  if (mode === "serve-raw") await serveRaw(holdFromArgs(args));
  else if (mode === "serve-rpc") await serveRpc();
  else if (mode === "serve-raw-bulk") await serveRawBulk();
  else if (mode === "serve-raw-tls") await serveRawTls(holdFromArgs(args));
  else if (mode === "mem-clients") await memClients(Number(args[0]), Number(args[1]));
  else {
    const { renderTable } = await import("./table.ts");
    console.log(renderTable([await run()]));
  }
}
