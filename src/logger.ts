/**
 * Logging: a small structured `Logger` interface every layer may be given, the built-in loggers
 * (silent, JSON lines, console), and a per-key rate limiter for records that a hostile or broken
 * peer could otherwise make arrive at line rate (malformed packets and frames).
 *
 * Defaults: the library layers (`ClusterMembership`, `RpcServer`, `ClusterClient`) are silent
 * unless given a logger; `Node` logs warnings and errors as JSON lines on stderr
 * ({@linkcode defaultLogger}). A library should not write to stderr unasked, but an operator
 * running a node should hear about failures that are otherwise only counted.
 *
 * @module
 */

import { invalidOption } from "./options.ts";

/** Severity of a log record, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Numeric rank of each {@linkcode LogLevel} (for threshold comparisons). */
export const LOG_LEVELS: Readonly<Record<LogLevel, number>> = Object.freeze({
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
});

/** Structured fields of a record: flat, JSON-serialisable values. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** One log record as handed to a {@linkcode LogSink}. */
export interface LogRecord {
  /** Milliseconds since the epoch. */
  readonly time: number;
  /** Severity. */
  readonly level: LogLevel;
  /** What happened, as a stable, grep-able phrase (e.g. `"member state changed"`). */
  readonly msg: string;
  /** Structured context (member id, address, error code, ...). */
  readonly fields: LogFields;
}

/** Where records go: one call per record that passed the level threshold. */
export type LogSink = (record: LogRecord) => void;

/**
 * A leveled, structured logger. `enabled(level)` lets callers skip building fields for records
 * that would be dropped.
 */
export interface Logger {
  /** Whether records of `level` are kept. */
  enabled(level: LogLevel): boolean;
  /** Logs a debug record. */
  debug(msg: string, fields?: LogFields): void;
  /** Logs an info record. */
  info(msg: string, fields?: LogFields): void;
  /** Logs a warning. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs an error. */
  error(msg: string, fields?: LogFields): void;
}

const NO_FIELDS: LogFields = Object.freeze({}) as LogFields;

/**
 * Creates a logger that hands every record at or above `level` to `sink`. A sink that throws is
 * ignored: logging never breaks the caller.
 *
 * @param sink receives the records
 * @param level lowest level kept (default `"info"`)
 */
export function createLogger(sink: LogSink, level: LogLevel = "info"): Logger {
  const min = LOG_LEVELS[level];
  if (min === undefined) {
    throw invalidOption("level", `one of ${Object.keys(LOG_LEVELS).join(", ")}`, level);
  }
  const emit = (lv: LogLevel, msg: string, fields: LogFields | undefined): void => {
    if (LOG_LEVELS[lv] < min) return;
    try {
      sink({ time: Date.now(), level: lv, msg, fields: fields ?? NO_FIELDS });
    } catch { /* a broken sink must not break the protocol */ }
  };
  return {
    enabled: (lv) => LOG_LEVELS[lv] >= min,
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
  };
}

/** A logger that drops everything (the default of the library layers). */
export const silentLogger: Logger = Object.freeze({
  enabled: () => false,
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
});

/** Formats a record as one JSON line: `{"time":"…","level":"warn","msg":"…",…fields}`. */
export function formatJsonLine(record: LogRecord): string {
  const out: Record<string, unknown> = {
    time: new Date(record.time).toISOString(),
    level: record.level,
    msg: record.msg,
  };
  for (const k in record.fields) {
    const v = record.fields[k];
    if (v !== undefined && !(k in out)) out[k] = v;
  }
  return JSON.stringify(out);
}

/**
 * A logger writing one JSON object per line to stderr (or `write`), as `rpcnet agent` prints.
 *
 * @param level lowest level kept (default `"info"`)
 * @param write where lines go (default: stderr)
 */
export function jsonLogger(
  level: LogLevel = "info",
  write: (line: string) => void = (line) => console.error(line),
): Logger {
  return createLogger((r) => write(formatJsonLine(r)), level);
}

/**
 * The logger `Node` uses when given none: warnings and errors as JSON lines on stderr. Set
 * `logger: silentLogger` to silence a node.
 */
export function defaultLogger(): Logger {
  return jsonLogger("warn");
}

/**
 * Lets through at most `perInterval` records per key per `intervalMs` and counts the rest, so
 * a flood of malformed packets costs one line per interval, not one per packet. The next record
 * let through carries the number suppressed since (`suppressed` field).
 */
export class LogRateLimiter {
  #intervalMs: number;
  #perInterval: number;
  #now: () => number;
  #windows = new Map<string, { start: number; count: number; suppressed: number }>();

  /**
   * Creates a limiter.
   *
   * @param intervalMs window length (default 10 000 ms)
   * @param perInterval records let through per key per window (default 1)
   * @param now clock (default `Date.now`)
   */
  constructor(intervalMs = 10_000, perInterval = 1, now: () => number = Date.now) {
    this.#intervalMs = intervalMs;
    this.#perInterval = perInterval;
    this.#now = now;
  }

  /**
   * Whether a record under `key` may be logged now.
   *
   * @returns `-1` to suppress it, else the number suppressed since the last one let through
   */
  admit(key: string): number {
    const now = this.#now();
    let w = this.#windows.get(key);
    if (w === undefined) {
      // Bounded: a key per reason, not per peer, is what callers use; clear if misused.
      if (this.#windows.size >= 1024) this.#windows.clear();
      this.#windows.set(key, w = { start: now, count: 0, suppressed: 0 });
    }
    if (now - w.start >= this.#intervalMs) {
      w.start = now;
      w.count = 0;
    }
    if (w.count >= this.#perInterval) {
      w.suppressed++;
      return -1;
    }
    w.count++;
    const suppressed = w.suppressed;
    w.suppressed = 0;
    return suppressed;
  }
}
