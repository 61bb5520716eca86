/**
 * Option checks shared by every layer: each bad option becomes an `RpcError("invalid_argument")`
 * naming the option as the user wrote it, what it must be, and what it got, never a raw
 * `TypeError` or a silently wrong timer.
 *
 * @module
 */

import { RpcError } from "./errors.ts";

/**
 * The longest delay a timer can hold: `setTimeout` fires at once for 2^31 ms or more, so every
 * duration option is checked against this bound (about 24.8 days).
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

function describe(v: unknown): string {
  if (v === null) return "null";
  if (v instanceof Date) return "a Date";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? v.slice(0, 60) + "…" : v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

/** An `invalid_argument` error naming option `name`, what it must be and the value it got. */
export function invalidOption(name: string, must: string, got: unknown): RpcError {
  return new RpcError("invalid_argument", `${name} must be ${must}, got ${describe(got)}`);
}

/** Checks that `v` is an integer in [min, max]; returns it, or `fallback` when undefined. */
export function checkInt(
  name: string,
  v: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw invalidOption(name, `an integer in [${min}, ${max}]`, v);
  }
  return v;
}

/** Checks that `v` is a finite number in [min, max]; returns it, or `fallback` when undefined. */
export function checkNumber(
  name: string,
  v: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    throw invalidOption(name, `a finite number in [${min}, ${max}]`, v);
  }
  return v;
}

/**
 * Checks a duration in milliseconds: a finite number in [min, {@linkcode MAX_TIMER_MS}] (timers
 * cannot hold more); returns it, or `fallback` when undefined.
 */
export function checkDurationMs(
  name: string,
  v: unknown,
  fallback: number,
  min = 0,
): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > MAX_TIMER_MS) {
    throw invalidOption(name, `a duration in milliseconds in [${min}, ${MAX_TIMER_MS}]`, v);
  }
  return v;
}

/** Checks that `v` is a string (non-empty unless `allowEmpty`); returns it or `fallback`. */
export function checkString<T extends string | undefined>(
  name: string,
  v: unknown,
  fallback: T,
  allowEmpty = false,
): string | T {
  if (v === undefined) return fallback;
  if (typeof v !== "string" || (!allowEmpty && v.length === 0)) {
    throw invalidOption(name, allowEmpty ? "a string" : "a non-empty string", v);
  }
  return v;
}

/** Checks that `v` is a boolean; returns it, or `fallback` when undefined. */
export function checkBoolean(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") throw invalidOption(name, "true or false", v);
  return v;
}

/** Checks that `v` is an array of strings; returns a copy, or `fallback` when undefined. */
export function checkStringArray(
  name: string,
  v: unknown,
  fallback: readonly string[],
): string[] {
  if (v === undefined) return [...fallback];
  if (!Array.isArray(v)) throw invalidOption(name, "an array of strings", v);
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== "string") throw invalidOption(`${name}[${i}]`, "a string", v[i]);
  }
  return [...v];
}

/** Checks that `v` is a plain object (not null, an array, a Date or a class instance). */
export function checkPlainObject(name: string, v: unknown): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw invalidOption(name, "a plain object", v);
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    throw invalidOption(name, "a plain object", v);
  }
  return v as Record<string, unknown>;
}
