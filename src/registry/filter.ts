/**
 * Tag filters: which nodes a call may go to.
 *
 * Grammar (whitespace allowed between tokens; clauses are ANDed):
 *
 * ```text
 * filter  := ""  |  clause ("," clause)*
 * clause  := key                       key present            gpu
 *          | "!" key                   key absent             !gpu
 *          | key "=" value             equal                  role=worker
 *          | key "!=" value            not equal (or absent)  zone!=us-1
 *          | key "in" "(" values ")"   one of                 zone in (eu-1,eu-2)
 *          | key "notin" "(" values ")"  none of (or absent)  zone notin (us-1)
 * values  := value ("," value)*
 * key     := [A-Za-z0-9_.\-/:]+
 * value   := bare | '"' (char | '\"' | '\\')* '"'     bare: no whitespace and none of , ( ) = ! "
 * ```
 *
 * Negative clauses (`!=`, `notin`, `!key`) match nodes that lack the key, as Kubernetes label
 * selectors do. The canonical form sorts clauses, so equivalent filters share one cache entry.
 *
 * @module
 */

import { RpcError } from "../errors.ts";
import { invalidOption } from "../options.ts";
import type { Tags } from "../membership/types.ts";

/** One condition on a node's tags. */
export type FilterClause =
  | { readonly op: "exists"; readonly key: string }
  | { readonly op: "absent"; readonly key: string }
  | { readonly op: "eq"; readonly key: string; readonly value: string }
  | { readonly op: "ne"; readonly key: string; readonly value: string }
  | { readonly op: "in"; readonly key: string; readonly values: readonly string[] }
  | { readonly op: "notin"; readonly key: string; readonly values: readonly string[] };

/**
 * Object form of a filter: every entry must hold. A string value means equality, an array means
 * "one of", `true` means "key present" and `false` means "key absent".
 */
export type FilterObject = Readonly<Record<string, string | readonly string[] | boolean>>;

/** Anything a filter may be given as; `undefined`, `""` and `{}` match every node. */
export type FilterInput = string | FilterObject | TagFilter | undefined;

/** A parsed, immutable tag filter. */
export interface TagFilter {
  /** The clauses, sorted canonically; all must hold. */
  readonly clauses: readonly FilterClause[];
  /** Canonical string form: equal for equivalent filters, parseable by {@linkcode parseFilter}. */
  readonly canonical: string;
  /** Whether a node with these tags passes every clause. */
  matches(tags: Tags): boolean;
}

const KEY_CHAR = /[A-Za-z0-9_.\-/:]/;
const BARE_STOP = new Set([",", "(", ")", "=", "!", '"']);

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r";
}

function quoteIfNeeded(v: string): string {
  if (v.length > 0 && ![...v].some((c) => BARE_STOP.has(c) || isSpace(c) || c === "\\")) return v;
  return `"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

function clauseString(c: FilterClause): string {
  switch (c.op) {
    case "exists":
      return c.key;
    case "absent":
      return `!${c.key}`;
    case "eq":
      return `${c.key}=${quoteIfNeeded(c.value)}`;
    case "ne":
      return `${c.key}!=${quoteIfNeeded(c.value)}`;
    case "in":
      return `${c.key} in (${c.values.map(quoteIfNeeded).join(",")})`;
    case "notin":
      return `${c.key} notin (${c.values.map(quoteIfNeeded).join(",")})`;
  }
}

function clauseMatches(c: FilterClause, tags: Tags): boolean {
  const has = Object.hasOwn(tags, c.key);
  const v = has ? tags[c.key] : undefined;
  switch (c.op) {
    case "exists":
      return has;
    case "absent":
      return !has;
    case "eq":
      return has && v === c.value;
    case "ne":
      return !has || v !== c.value;
    case "in":
      return has && c.values.includes(v as string);
    case "notin":
      return !has || !c.values.includes(v as string);
  }
}

class ParsedFilter implements TagFilter {
  readonly clauses: readonly FilterClause[];
  readonly canonical: string;

  constructor(clauses: FilterClause[]) {
    const normalised = clauses.map((c): FilterClause =>
      c.op === "in" || c.op === "notin" ? { ...c, values: [...new Set(c.values)].sort() } : c
    );
    const byString = new Map<string, FilterClause>();
    for (const c of normalised) byString.set(clauseString(c), c);
    const keys = [...byString.keys()].sort();
    this.clauses = Object.freeze(keys.map((k) => byString.get(k)!));
    this.canonical = keys.join(",");
  }

  matches(tags: Tags): boolean {
    for (const c of this.clauses) if (!clauseMatches(c, tags)) return false;
    return true;
  }

  toString(): string {
    return this.canonical;
  }
}

class Parser {
  pos = 0;
  constructor(readonly src: string) {}

  fail(expected: string): never {
    const found = this.pos >= this.src.length ? "end of filter" : `'${this.src[this.pos]}'`;
    throw new RpcError(
      "invalid_argument",
      `invalid filter ${
        JSON.stringify(this.src)
      }: expected ${expected} at position ${this.pos}, found ${found}`,
    );
  }

  skipSpace(): void {
    while (isSpace(this.src[this.pos])) this.pos++;
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.pos >= this.src.length;
  }

  key(): string {
    this.skipSpace();
    const start = this.pos;
    while (this.pos < this.src.length && KEY_CHAR.test(this.src[this.pos])) this.pos++;
    if (this.pos === start) this.fail("a tag key");
    return this.src.slice(start, this.pos);
  }

  value(): string {
    this.skipSpace();
    const c = this.src[this.pos];
    if (c === '"') {
      const start = this.pos;
      this.pos++;
      let out = "";
      while (this.pos < this.src.length) {
        const ch = this.src[this.pos++];
        if (ch === '"') return out;
        if (ch === "\\") {
          const next = this.src[this.pos];
          if (next !== '"' && next !== "\\") this.fail(`'"' or '\\' after '\\'`);
          out += next;
          this.pos++;
        } else {
          out += ch;
        }
      }
      this.pos = this.src.length;
      this.fail(`a closing '"' for the string opened at position ${start}`);
    }
    const start = this.pos;
    while (
      this.pos < this.src.length && !BARE_STOP.has(this.src[this.pos]) &&
      !isSpace(this.src[this.pos])
    ) this.pos++;
    if (this.pos === start) this.fail("a tag value");
    return this.src.slice(start, this.pos);
  }

  valueList(): string[] {
    this.skipSpace();
    if (this.src[this.pos] !== "(") this.fail("'('");
    this.pos++;
    const values = [this.value()];
    for (;;) {
      this.skipSpace();
      const c = this.src[this.pos];
      if (c === ")") {
        this.pos++;
        return values;
      }
      if (c !== ",") this.fail("',' or ')'");
      this.pos++;
      values.push(this.value());
    }
  }

  /** Reads `word` when it stands alone (followed by space or '('). */
  keyword(word: string): boolean {
    this.skipSpace();
    if (!this.src.startsWith(word, this.pos)) return false;
    const after = this.src[this.pos + word.length];
    if (after !== undefined && !isSpace(after) && after !== "(") return false;
    this.pos += word.length;
    return true;
  }

  clause(): FilterClause {
    this.skipSpace();
    if (this.src[this.pos] === "!") {
      this.pos++;
      return { op: "absent", key: this.key() };
    }
    const key = this.key();
    this.skipSpace();
    const c = this.src[this.pos];
    if (c === "=") {
      this.pos++;
      return { op: "eq", key, value: this.value() };
    }
    if (c === "!") {
      if (this.src[this.pos + 1] !== "=") {
        this.pos++;
        this.fail("'=' after '!'");
      }
      this.pos += 2;
      return { op: "ne", key, value: this.value() };
    }
    if (c === undefined || c === ",") return { op: "exists", key };
    if (this.keyword("in")) return { op: "in", key, values: this.valueList() };
    if (this.keyword("notin")) return { op: "notin", key, values: this.valueList() };
    return this.fail("'=', '!=', 'in', 'notin', ',' or end of filter");
  }

  filter(): FilterClause[] {
    if (this.atEnd()) return [];
    const clauses = [this.clause()];
    while (!this.atEnd()) {
      if (this.src[this.pos] !== ",") this.fail("',' or end of filter");
      this.pos++;
      clauses.push(this.clause());
    }
    return clauses;
  }
}

function fromObject(obj: FilterObject): FilterClause[] {
  const clauses: FilterClause[] = [];
  for (const [key, v] of Object.entries(obj)) {
    if (key.length === 0 || ![...key].every((c) => KEY_CHAR.test(c))) {
      throw new RpcError(
        "invalid_argument",
        `invalid filter object: key ${
          JSON.stringify(key)
        } must be non-empty and use only A-Z a-z 0-9 _ . - / :`,
      );
    }
    if (typeof v === "string") clauses.push({ op: "eq", key, value: v });
    else if (v === true) clauses.push({ op: "exists", key });
    else if (v === false) clauses.push({ op: "absent", key });
    else if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string")) {
      clauses.push({ op: "in", key, values: v as string[] });
    } else {
      throw new RpcError(
        "invalid_argument",
        `invalid filter object: value of ${JSON.stringify(key)} must be a string, ` +
          `a non-empty array of strings, or a boolean`,
      );
    }
  }
  return clauses;
}

const MATCH_ALL = new ParsedFilter([]);
const cache = new Map<string, TagFilter>();
const CACHE_LIMIT = 1024;

/**
 * Parses a tag filter. Strings are cached, so calling this per request is cheap.
 *
 * @param input a filter string, an object (`{role: "worker"}`), an already parsed filter, or
 *   `undefined` (matches every node)
 * @returns the parsed filter
 * @throws {RpcError} `invalid_argument` naming the 0-based position and what was expected
 *
 * @example
 * ```ts
 * import { parseFilter } from "@rpcnet/cluster";
 *
 * const f = parseFilter("role=worker, zone in (eu-2,eu-1)");
 * console.log(f.canonical); // "role=worker,zone in (eu-1,eu-2)"
 * console.log(f.matches({ role: "worker", zone: "eu-1" })); // true
 * ```
 */
export function parseFilter(input: FilterInput): TagFilter {
  if (input === undefined) return MATCH_ALL;
  if (typeof input === "string") {
    const hit = cache.get(input);
    if (hit) return hit;
    const parsed = new ParsedFilter(new Parser(input).filter());
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(input, parsed);
    return parsed;
  }
  return checkFilter("filter", input);
}

/**
 * Parses a filter given as option `name`: like {@linkcode parseFilter}, but a value that is not
 * a filter at all (a number, `null`, an array, a `Date` or another class instance, which would
 * otherwise read as an empty object and match every node) is an error naming `name`.
 *
 * @throws {RpcError} `invalid_argument` naming `name`, or the parse error of a filter string
 */
export function checkFilter(name: string, input: unknown): TagFilter {
  if (input === undefined || typeof input === "string") return parseFilter(input);
  if (input instanceof ParsedFilter) return input;
  if (typeof input === "object" && input !== null && isTagFilter(input)) return input;
  const proto = typeof input === "object" && input !== null ? Object.getPrototypeOf(input) : 0;
  if (proto !== Object.prototype && proto !== null) {
    throw invalidOption(
      name,
      'a filter string ("role=worker"), a plain object ({ role: "worker" }) or a parsed filter',
      input,
    );
  }
  return new ParsedFilter(fromObject(input as FilterObject));
}

function isTagFilter(x: object): x is TagFilter {
  const f = x as Partial<TagFilter>;
  return Array.isArray(f.clauses) && typeof f.canonical === "string" &&
    typeof f.matches === "function";
}

/**
 * Whether a node with `tags` passes `filter`.
 *
 * @example
 * ```ts
 * import { matchesFilter } from "@rpcnet/cluster";
 * console.log(matchesFilter("gpu,zone!=us-1", { gpu: "a100", zone: "eu-1" })); // true
 * ```
 */
export function matchesFilter(filter: FilterInput, tags: Tags): boolean {
  return parseFilter(filter).matches(tags);
}

/** Display form of a filter for error messages: the canonical string, or `(any)` when empty. */
export function describeFilter(filter: FilterInput): string {
  const canonical = parseFilter(filter).canonical;
  return canonical === "" ? "(any)" : JSON.stringify(canonical);
}
