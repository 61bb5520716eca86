import assert from "node:assert/strict";
import { CallTable } from "../src/rpc/call_table.ts";

Deno.test("CallTable: sequential ids are found, taken once, and counted", () => {
  const t = new CallTable<string>();
  for (let id = 1; id <= 3000; id++) t.set(id, `v${id}`);
  assert.equal(t.size, 3000);
  assert.equal(t.get(1), "v1");
  assert.equal(t.get(1025), "v1025", "an id colliding with a live one goes to the overflow map");
  assert.equal(t.take(2049), "v2049");
  assert.equal(t.take(2049), undefined, "taken once");
  assert.equal(t.get(2049), undefined);
  assert.equal(t.size, 2999);
  for (let id = 1; id <= 3000; id++) t.take(id);
  assert.equal(t.size, 0);
  assert.deepEqual(t.ids(), []);
  assert.deepEqual(t.values(), []);
});

Deno.test("CallTable: ids wrap past 2^32-1 and a freed slot is reused", () => {
  const t = new CallTable<number>();
  t.set(0xffff_ffff, 1);
  t.set(1, 2);
  assert.equal(t.get(0xffff_ffff), 1);
  assert.equal(t.take(1), 2);
  t.set(1 + 1024, 3); // slot of 1, now free
  assert.equal(t.get(1025), 3);
  assert.equal(t.get(1), undefined);
  assert.deepEqual(t.ids().sort((a, b) => a - b), [1025, 0xffff_ffff]);
});

Deno.test("CallTable: id 0 and duplicate ids from a hostile peer are kept apart, never lost", () => {
  const t = new CallTable<string>();
  assert.equal(t.get(0), undefined, "a free slot does not answer for id 0");
  assert.equal(t.take(0), undefined);
  assert.equal(t.size, 0);
  t.set(0, "zero");
  t.set(7, "first");
  t.set(7, "second");
  assert.equal(t.size, 3);
  assert.equal(t.get(0), "zero");
  assert.deepEqual(t.values().sort(), ["first", "second", "zero"]);
  assert.equal(t.take(7), "first");
  assert.equal(t.take(7), "second");
  assert.equal(t.take(0), "zero");
  assert.equal(t.size, 0);
});

Deno.test("CallTable: a long call among a million short ones stays reachable", () => {
  const t = new CallTable<number>();
  t.set(1, -1); // in flight throughout
  for (let id = 2; id < 1_000_000; id++) {
    t.set(id, id);
    assert.equal(t.take(id), id);
  }
  assert.equal(t.size, 1);
  assert.equal(t.take(1), -1);
  assert.equal(t.size, 0);
});
