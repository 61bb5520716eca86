import assert from "node:assert/strict";
import { matchesFilter, parseFilter, RpcError } from "../mod.ts";

const worker_eu1 = { role: "worker", zone: "eu-1" };
const worker_eu2_gpu = { role: "worker", zone: "eu-2", gpu: "a100" };
const worker_us1 = { role: "worker", zone: "us-1" };
const director = { role: "director" };
const ALL = [worker_eu1, worker_eu2_gpu, worker_us1, director];

function which(filter: Parameters<typeof parseFilter>[0]): number[] {
  const f = parseFilter(filter);
  return ALL.flatMap((t, i) => f.matches(t) ? [i] : []);
}

function parseError(src: string): RpcError {
  try {
    parseFilter(src);
  } catch (e) {
    assert.ok(e instanceof RpcError, `expected RpcError, got ${e}`);
    assert.equal(e.code, "invalid_argument");
    return e;
  }
  assert.fail(`filter ${JSON.stringify(src)} should not parse`);
}

Deno.test("filter: equality, AND, key presence, not-equal and in", () => {
  assert.deepEqual(which("role=worker"), [0, 1, 2]);
  assert.deepEqual(which("role=worker,zone=eu-1"), [0]);
  assert.deepEqual(which("gpu"), [1]);
  assert.deepEqual(which("zone!=us-1"), [0, 1, 3]); // a node without the key passes !=
  assert.deepEqual(which("zone in (eu-1,eu-2)"), [0, 1]);
  assert.deepEqual(which("role=worker,zone notin (eu-1)"), [1, 2]);
  assert.deepEqual(which("!gpu,role=worker"), [0, 2]);
  assert.deepEqual(which("role=nobody"), []);
});

Deno.test("filter: empty string, whitespace, undefined and {} match every node", () => {
  for (const f of ["", "   ", undefined, {}]) assert.deepEqual(which(f), [0, 1, 2, 3]);
  assert.equal(parseFilter("").canonical, "");
});

Deno.test("filter: whitespace is tolerated around every token", () => {
  const spaced = parseFilter("  role = worker ,\tzone   in(  eu-2 , eu-1 )  , gpu ");
  assert.equal(spaced.canonical, parseFilter("gpu,role=worker,zone in (eu-1,eu-2)").canonical);
  assert.deepEqual(which(" zone != us-1 "), [0, 1, 3]);
});

Deno.test("filter: canonical form is order-independent, deduplicated and re-parseable", () => {
  const a = parseFilter("zone=eu-1,role=worker");
  const b = parseFilter("role=worker, zone=eu-1, role=worker");
  assert.equal(a.canonical, "role=worker,zone=eu-1");
  assert.equal(b.canonical, a.canonical);
  assert.equal(parseFilter("zone in (eu-2,eu-1,eu-2)").canonical, "zone in (eu-1,eu-2)");
  for (const src of ["gpu,!ssd,zone!=us-1", 'zone notin (a,b),x="a b"', 'k="q\\"uote"']) {
    const f = parseFilter(src);
    assert.equal(parseFilter(f.canonical).canonical, f.canonical);
  }
});

Deno.test("filter: object form means the same as the string form", () => {
  assert.equal(parseFilter({ role: "worker" }).canonical, "role=worker");
  assert.equal(
    parseFilter({ zone: ["eu-2", "eu-1"], gpu: true, ssd: false, role: "worker" }).canonical,
    parseFilter("role=worker,gpu,!ssd,zone in (eu-1,eu-2)").canonical,
  );
  assert.deepEqual(which({ role: "worker", zone: "eu-1" }), [0]);
  // A parsed filter passes through unchanged.
  const f = parseFilter("gpu");
  assert.equal(parseFilter(f), f);
});

Deno.test("filter: quoted values may hold separators and escapes", () => {
  const f = parseFilter('name="a, (b) = c",path="x\\\\y\\"z"');
  assert.ok(f.matches({ name: "a, (b) = c", path: 'x\\y"z' }));
  assert.ok(!f.matches({ name: "a", path: 'x\\y"z' }));
  assert.ok(matchesFilter('v=""', { v: "" }));
  assert.ok(!matchesFilter('v=""', { v: "x" }));
});

Deno.test("filter: tag values that look like prototype keys are not inherited", () => {
  assert.ok(!matchesFilter("constructor", {}));
  assert.ok(!matchesFilter("toString", { role: "worker" }));
});

Deno.test("filter: parse errors name the 0-based position and what was expected", () => {
  const cases: [string, number, string][] = [
    ["role=", 5, "a tag value"],
    ["=worker", 0, "a tag key"],
    ["role=worker,", 12, "a tag key"],
    ["role=worker,,zone=x", 12, "a tag key"],
    ["role==worker", 5, "a tag value"],
    ["zone in eu-1", 8, "'('"],
    ["zone in (eu-1,eu-2", 18, "',' or ')'"],
    ["zone in ()", 9, "a tag value"],
    ["zone ! us-1", 6, "'=' after '!'"],
    ["role worker", 5, "'=', '!=', 'in', 'notin', ',' or end of filter"],
    ["role=worker zone=eu-1", 12, "',' or end of filter"],
    ['name="abc', 9, "a closing '\"'"],
    ['name="a\\b"', 8, "after '\\'"],
    ["ro le=x", 3, "'=', '!=', 'in', 'notin'"],
    ["role=(x)", 5, "a tag value"],
    ["!", 1, "a tag key"],
  ];
  for (const [src, pos, expected] of cases) {
    const e = parseError(src);
    assert.match(e.message, new RegExp(`at position ${pos}\\b`), `${src}: ${e.message}`);
    assert.ok(e.message.includes(expected), `${src}: ${e.message} lacks ${expected}`);
    assert.ok(e.message.includes(JSON.stringify(src)), `${src}: message should quote the filter`);
  }
});

Deno.test("filter: bad object filters are invalid_argument, not crashes", () => {
  const bad = [
    { role: 3 },
    { zone: [] },
    { zone: ["a", 1] },
    { "": "x" },
    { "a b": "x" },
    { role: null },
  ];
  for (const f of bad) {
    assert.throws(
      () => parseFilter(f as never),
      (e) => RpcError.is(e, "invalid_argument"),
      JSON.stringify(f),
    );
  }
  assert.throws(() => parseFilter(42 as never), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(() => parseFilter(null as never), (e) => RpcError.is(e, "invalid_argument"));
});

Deno.test("filter: repeated parsing of the same string returns the cached filter", () => {
  assert.equal(parseFilter("role=worker,zone=eu-9"), parseFilter("role=worker,zone=eu-9"));
});
