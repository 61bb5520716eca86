/**
 * `rpcnet top`: a live view of the cluster, redrawn in place every second: each member's state
 * and phi (as the node at `--addr` sees them) and the calls its handlers served since the last
 * refresh: calls/s, p50/p99 handler latency and errors/s, from each member's `$cluster.stats`.
 * `q` (or Ctrl-C) quits; on a terminal stdin is put in raw mode so the key needs no Enter.
 *
 * @module
 */

import {
  ADMIN_METHODS,
  type AdminMember,
  type AdminMembers,
  type AdminStats,
  latencyQuantile,
} from "../client/admin.ts";
import { RpcError } from "../errors.ts";
import type { RpcClient } from "../rpc/client.ts";
import {
  bool,
  colours,
  colourState,
  connect,
  CONNECT_FLAGS,
  CONNECT_HELP,
  type ConnectSettings,
  connectSettings,
  type Io,
  parseDuration,
  parseFlags,
  str,
  table,
  toJson,
  UsageError,
} from "./common.ts";

/** Help of `rpcnet top`. */
export const TOP_HELP = `usage: rpcnet top [--interval D] [--count N] [--json] [--addr HOST:PORT]

A live view of the cluster, redrawn every second: every member with its state and phi (as the
node at --addr sees them), and per member the calls its handlers served since the last refresh:
calls/s, p50 and p99 handler latency, errors/s, and calls in flight. Press q to quit.

Options:
  --interval D       refresh period (default 1s)
  --count N          stop after N refreshes (default: until q)
  --json             print one JSON object per refresh instead of drawing
  -h, --help         this help

${CONNECT_HELP}`;

/** One member's row of a refresh. */
export interface TopRow {
  /** Member id. */
  id: string;
  /** SWIM state as the node at --addr sees it. */
  state: string;
  /** Phi at the node at --addr. */
  phi: number;
  /** RPC address. */
  rpcAddr: string;
  /** Calls served per second since the previous refresh (undefined on the first one). */
  callsPerSec?: number;
  /** Errors per second since the previous refresh. */
  errorsPerSec?: number;
  /** Median handler latency of those calls, ms (undefined without calls). */
  p50Ms?: number;
  /** 99th percentile handler latency, ms. */
  p99Ms?: number;
  /** Calls running on the member's server now. */
  inFlight?: number;
  /** Why the member's stats could not be read. */
  error?: string;
}

/** One refresh. */
export interface TopFrame {
  /** Epoch ms. */
  at: number;
  /** The node looked through. */
  addr: string;
  /** Members, sorted by id. */
  rows: TopRow[];
  /** Why the member list could not be read (the rows are then from the last good one). */
  error?: string;
}

interface Sample {
  at: number;
  stats: AdminStats;
}

/** Polls members and their stats; keeps one client per member address. */
class Poller {
  readonly #settings: ConnectSettings;
  readonly #clients = new Map<string, Promise<RpcClient>>();
  readonly #last = new Map<string, Sample>();
  #members: AdminMember[] = [];
  readonly #timeoutMs: number;

  constructor(settings: ConnectSettings, timeoutMs: number) {
    this.#settings = settings;
    this.#timeoutMs = timeoutMs;
  }

  #client(addr: string): Promise<RpcClient> {
    let c = this.#clients.get(addr);
    if (c === undefined) {
      c = connect(this.#settings, addr);
      this.#clients.set(addr, c);
      // A failed connect is retried on the next refresh.
      c.catch(() => this.#clients.delete(addr));
    }
    return c;
  }

  async #call<T>(addr: string, method: string, request: unknown): Promise<T> {
    const client = await this.#client(addr);
    return await client.call<T>(method, request, { timeoutMs: this.#timeoutMs });
  }

  async poll(): Promise<TopFrame> {
    const frame: TopFrame = { at: Date.now(), addr: this.#settings.addr, rows: [] };
    try {
      this.#members =
        (await this.#call<AdminMembers>(this.#settings.addr, ADMIN_METHODS.members, null))
          .members;
    } catch (e) {
      frame.error = RpcError.is(e) ? `${e.code}: ${e.message}` : String(e);
    }
    frame.rows = await Promise.all(this.#members.map((m) => this.#row(m)));
    return frame;
  }

  async #row(m: AdminMember): Promise<TopRow> {
    const row: TopRow = { id: m.id, state: m.state, phi: m.phi, rpcAddr: m.rpcAddr };
    if (!m.rpcAddr || (m.state !== "alive" && m.state !== "suspect")) {
      this.#last.delete(m.id);
      return row;
    }
    let stats: AdminStats;
    try {
      stats = await this.#call<AdminStats>(m.rpcAddr, ADMIN_METHODS.stats, null);
    } catch (e) {
      row.error = RpcError.is(e) ? e.code : "unreachable";
      return row;
    }
    const now = performance.now();
    const prev = this.#last.get(m.id);
    this.#last.set(m.id, { at: now, stats });
    row.inFlight = stats.server.activeCalls;
    if (prev === undefined || prev.stats.uptimeMs > stats.uptimeMs) return row;
    const secs = Math.max(0.001, (now - prev.at) / 1000);
    const a = prev.stats.served, b = stats.served;
    row.callsPerSec = (b.calls - a.calls) / secs;
    row.errorsPerSec = (b.errors - a.errors) / secs;
    const delta = b.latencyCounts.map((c, i) => c - (a.latencyCounts[i] ?? 0));
    row.p50Ms = latencyQuantile(b.latencyBoundsMs, delta, 0.5);
    row.p99Ms = latencyQuantile(b.latencyBoundsMs, delta, 0.99);
    return row;
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.#clients.values()].map((c) => c.then((x) => x.close(), () => {})),
    );
  }
}

function fmtMs(v: number | undefined): string {
  if (v === undefined) return "-";
  if (!Number.isFinite(v)) return ">60s";
  return v < 1 ? `${v.toFixed(2)}ms` : v < 100 ? `${v.toFixed(1)}ms` : `${Math.round(v)}ms`;
}

function fmtRate(v: number | undefined): string {
  return v === undefined ? "-" : v >= 100 ? String(Math.round(v)) : v.toFixed(1);
}

/** A frame as text. */
export function renderFrame(f: TopFrame, io: Io): string {
  const c = colours(io);
  const live = f.rows.filter((r) => r.state === "alive" || r.state === "suspect").length;
  let total = 0;
  for (const r of f.rows) total += r.callsPerSec ?? 0;
  const head = `rpcnet top — ${f.addr} — ${f.rows.length} members, ${live} live — ` +
    `${fmtRate(total)} calls/s — ${new Date(f.at).toISOString().slice(11, 19)}    (q to quit)`;
  const rows = [
    ["NODE", "STATE", "PHI", "RPC", "CALLS/S", "P50", "P99", "ERR/S", "INFLIGHT"].map(c.bold),
  ];
  for (const r of f.rows) {
    rows.push([
      r.id,
      colourState(c, r.state === "dead" ? "failed" : r.state),
      r.phi.toFixed(1),
      r.rpcAddr || "-",
      r.error ? c.red(r.error) : fmtRate(r.callsPerSec),
      fmtMs(r.p50Ms),
      fmtMs(r.p99Ms),
      r.errorsPerSec ? c.red(fmtRate(r.errorsPerSec)) : fmtRate(r.errorsPerSec),
      r.inFlight === undefined ? "-" : String(r.inFlight),
    ]);
  }
  return head + "\n" + (f.error ? c.red(`cannot list members: ${f.error}`) + "\n" : "") + "\n" +
    table(rows);
}

/** Resolves when q, Q or Ctrl-C is read from stdin (raw mode on a terminal). */
function quitKey(signal: AbortSignal): { pressed: Promise<void>; restore: () => void } {
  const raw = Deno.stdin.isTerminal();
  if (raw) Deno.stdin.setRaw(true);
  const pressed = (async () => {
    const buf = new Uint8Array(64);
    while (!signal.aborted) {
      let n: number | null;
      try {
        n = await Deno.stdin.read(buf);
      } catch {
        break;
      }
      if (n === null) break; // no stdin: run until --count or a signal
      for (const b of buf.subarray(0, n)) if (b === 0x71 || b === 0x51 || b === 0x03) return;
    }
    await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
  })();
  return {
    pressed,
    restore: () => {
      if (raw) {
        try {
          Deno.stdin.setRaw(false);
        } catch { /* stdin gone */ }
      }
    },
  };
}

/** Runs `rpcnet top` until q (or `--count`); returns the exit code. */
export async function topCommand(args: string[], io: Io): Promise<number> {
  const p = parseFlags(args, {
    ...CONNECT_FLAGS,
    interval: { type: "string" },
    count: { type: "string" },
    json: { type: "boolean" },
  }, 0);
  if (p.values.help) {
    io.out(TOP_HELP + "\n");
    return 0;
  }
  const intervalText = str(p, "interval");
  const intervalMs = intervalText === undefined ? 1000 : parseDuration("--interval", intervalText);
  if (intervalMs < 100) {
    throw new UsageError(`--interval must be at least 100ms, got '${intervalText}'`);
  }
  const countText = str(p, "count");
  const count = countText === undefined ? Infinity : Number(countText);
  if (!(Number.isInteger(count) && count > 0) && count !== Infinity) {
    throw new UsageError(`--count must be a positive integer, got '${countText}'`);
  }
  const json = bool(p, "json");
  const settings = await connectSettings(p, io);
  const poller = new Poller(settings, Math.min(intervalMs, 2000));
  // Fails fast (exit 1) when the node cannot be reached at all.
  const first = await connect(settings);
  await first.close();

  const done = new AbortController();
  const { pressed, restore } = quitKey(done.signal);
  const onSignal = () => done.abort();
  try {
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
  } catch { /* no signals here */ }
  pressed.then(() => done.abort());
  const drawInPlace = io.isTerminal && !json;
  if (drawInPlace) io.out("\x1b[?25l"); // hide the cursor while drawing
  try {
    for (let i = 0; i < count && !done.signal.aborted; i++) {
      const started = Date.now();
      const frame = await poller.poll();
      if (done.signal.aborted) break;
      if (json) io.out(toJson(frame) + "\n");
      else if (drawInPlace) io.out("\x1b[H\x1b[2J" + renderFrame(frame, io));
      else io.out((i > 0 ? "\n" : "") + renderFrame(frame, io));
      if (i + 1 >= count) break;
      const wait = Math.max(0, intervalMs - (Date.now() - started));
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        done.signal.addEventListener("abort", () => {
          clearTimeout(t);
          r();
        }, { once: true });
      });
    }
  } finally {
    done.abort();
    restore();
    if (drawInPlace) io.out("\x1b[?25h\n");
    try {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
    } catch { /* no signals here */ }
    await poller.close();
  }
  return 0;
}
