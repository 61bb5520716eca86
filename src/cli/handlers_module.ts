/**
 * `rpcnet agent --handlers ./module.ts`: a module's exports become the node's handlers, so a
 * worker needs no main file. The method name is the export name; a `default` export that is a
 * plain object adds its keys as methods (names with dots, e.g. `"math.add"`). Each value is
 *
 * - an async generator function (`async function*`): a server-streaming handler;
 * - any other function: a unary handler `(request, ctx) => response`;
 * - `{ kind: "unary" | "serverStream" | "clientStream" | "bidiStream", handler }`: that kind.
 *
 * Anything else exported is an error naming the export (a handlers module holds handlers only).
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { RpcError } from "../errors.ts";

/** How a loaded handler is served. */
export type HandlerKind = "unary" | "serverStream" | "clientStream" | "bidiStream";

/** One handler of a module. */
export interface LoadedHandler {
  /** Method name. */
  method: string;
  /** How it is called. */
  kind: HandlerKind;
  /** The function. */
  fn: (...args: never[]) => unknown;
}

const KINDS: readonly HandlerKind[] = ["unary", "serverStream", "clientStream", "bidiStream"];

// deno-lint-ignore no-explicit-any
const AsyncGeneratorFunction = Object.getPrototypeOf(async function* () {}).constructor as any;

function describe(method: string, v: unknown, where: string): LoadedHandler {
  if (typeof v === "function") {
    return {
      method,
      kind: v instanceof AsyncGeneratorFunction ? "serverStream" : "unary",
      fn: v as LoadedHandler["fn"],
    };
  }
  if (typeof v === "object" && v !== null) {
    const o = v as { kind?: unknown; handler?: unknown };
    if (KINDS.includes(o.kind as HandlerKind) && typeof o.handler === "function") {
      return { method, kind: o.kind as HandlerKind, fn: o.handler as LoadedHandler["fn"] };
    }
  }
  throw new RpcError(
    "invalid_argument",
    `${where} is not a handler: export a function, an async generator function (server ` +
      `stream), or { kind: "unary" | "serverStream" | "clientStream" | "bidiStream", handler }`,
  );
}

/** The module specifier of `path`: URLs as they are, paths resolved against the cwd. */
export function moduleUrl(path: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(path) && !/^[a-z]:[\\/]/i.test(path)) return path;
  return pathToFileURL(isAbsolute(path) ? path : resolve(Deno.cwd(), path)).href;
}

/**
 * Imports a handlers module and lists its handlers.
 *
 * @throws {RpcError} `invalid_argument` when it cannot be imported, exports something that is
 * not a handler, names a method twice, or exports no handler
 */
export async function loadHandlers(path: string): Promise<LoadedHandler[]> {
  let mod: Record<string, unknown>;
  try {
    // The user's module, named at run time: `deno publish` warns that it cannot analyze this
    // import (it has nothing to rewrite here; there is no way to silence the warning yet).
    mod = await import(moduleUrl(path));
  } catch (e) {
    throw new RpcError(
      "invalid_argument",
      `--handlers: cannot import '${path}': ${(e as Error)?.message ?? e}`,
      { cause: e },
    );
  }
  const out: LoadedHandler[] = [];
  const seen = new Set<string>();
  const add = (h: LoadedHandler) => {
    if (seen.has(h.method)) {
      throw new RpcError("invalid_argument", `--handlers: method '${h.method}' is exported twice`);
    }
    seen.add(h.method);
    out.push(h);
  };
  for (const [name, v] of Object.entries(mod)) {
    if (name !== "default") {
      add(describe(name, v, `export '${name}' of '${path}'`));
      continue;
    }
    const proto = typeof v === "object" && v !== null ? Object.getPrototypeOf(v) : undefined;
    if (proto !== Object.prototype && proto !== null) {
      throw new RpcError(
        "invalid_argument",
        `the default export of '${path}' must be a plain object of handlers by method name`,
      );
    }
    for (const [method, h] of Object.entries(v as Record<string, unknown>)) {
      add(describe(method, h, `default export key '${method}' of '${path}'`));
    }
  }
  if (out.length === 0) {
    throw new RpcError("invalid_argument", `--handlers: '${path}' exports no handler`);
  }
  return out;
}
