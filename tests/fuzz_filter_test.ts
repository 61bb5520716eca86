/**
 * Fuzz target: the tag filter parser (`src/registry/filter.ts`). Random strings and mutations of
 * valid filters either parse or fail with `RpcError("invalid_argument")` — never another throw
 * or a hang — and every parsed filter round-trips: its canonical form parses to the same
 * canonical form and the same verdict on tags. 100,000 inputs by default; `RPCNET_FUZZ_RUNS`
 * sets the count.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseFilter, RpcError, type Tags } from "../mod.ts";

const RUNS = Number(Deno.env.get("RPCNET_FUZZ_RUNS") ?? 100_000);

/** Characters the grammar cares about, plus a few it does not. */
const ALPHABET = [...'ab01_.-/:=!,() \t"\\xyzé'].concat(["in", "notin", " in ", " notin "]);

const key = fc.stringMatching(/^[A-Za-z0-9_.\-/:]{1,6}$/);
const value = fc.oneof(
  fc.stringMatching(/^[a-z0-9_.\-]{1,6}$/),
  fc.string({ maxLength: 6 }).map((s) => `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`),
);
const clause = fc.oneof(
  key,
  key.map((k) => `!${k}`),
  fc.tuple(key, value).map(([k, v]) => `${k}=${v}`),
  fc.tuple(key, value).map(([k, v]) => `${k}!=${v}`),
  fc.tuple(key, fc.array(value, { minLength: 1, maxLength: 3 })).map(([k, vs]) =>
    `${k} in (${vs.join(",")})`
  ),
  fc.tuple(key, fc.array(value, { minLength: 1, maxLength: 3 })).map(([k, vs]) =>
    `${k} notin (${vs.join(", ")})`
  ),
);
const validFilter = fc.array(clause, { maxLength: 4 }).map((cs) => cs.join(" , "));

/** A valid filter with a few characters deleted, inserted or replaced. */
const mutated = fc.tuple(
  validFilter,
  fc.array(
    fc.tuple(fc.nat(), fc.constantFrom("del", "ins", "rep"), fc.constantFrom(...ALPHABET)),
    { minLength: 1, maxLength: 4 },
  ),
).map(([s, edits]) => {
  for (const [at, op, ch] of edits) {
    const i = s.length === 0 ? 0 : at % (s.length + 1);
    if (op === "del") s = s.slice(0, i) + s.slice(i + 1);
    else if (op === "ins") s = s.slice(0, i) + ch + s.slice(i);
    else s = s.slice(0, i) + ch + s.slice(i + 1);
  }
  return s;
});

const randomText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.array(fc.constantFrom(...ALPHABET), { maxLength: 30 }).map((a) => a.join("")),
);

const tagsArb = fc.dictionary(
  fc.constantFrom("a", "b", "zone", "role", "x.y", "k:1"),
  fc.constantFrom("", "a", "b", "1", "eu-1", 'q"', "a b"),
  { maxKeys: 4 },
);

function check(input: string, tags: Tags): void {
  let f;
  try {
    f = parseFilter(input);
  } catch (e) {
    if (!RpcError.is(e, "invalid_argument")) {
      throw new Error(`filter ${JSON.stringify(input)} threw ${e}`);
    }
    return;
  }
  const again = parseFilter(f.canonical);
  assert.equal(again.canonical, f.canonical, `canonical form of ${JSON.stringify(input)}`);
  assert.equal(again.matches(tags), f.matches(tags), `verdict of ${JSON.stringify(input)}`);
}

Deno.test(`fuzz: the filter parser on ${RUNS} random and mutated inputs only ever throws invalid_argument, and canonical forms round-trip`, () => {
  const third = Math.max(1, Math.floor(RUNS / 3));
  fc.assert(fc.property(mutated, tagsArb, check), { numRuns: third, seed: 1 });
  fc.assert(fc.property(randomText, tagsArb, check), { numRuns: third, seed: 2 });
  fc.assert(
    fc.property(validFilter, tagsArb, (input, tags) => {
      // Valid by construction: it must parse.
      const f = parseFilter(input);
      check(input, tags);
      assert.equal(parseFilter(f.canonical).clauses.length, f.clauses.length);
    }),
    { numRuns: RUNS - 2 * third, seed: 3 },
  );
});
