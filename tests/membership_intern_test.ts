import assert from "node:assert/strict";
import { ByteWriter, decodeBody, writeMessage } from "../src/membership/codec.ts";
import type { AliveMessage } from "../src/membership/codec.ts";
import {
  INTERN_MAX_ENTRIES,
  internStats,
  internString,
  internTags,
  setInternLimit,
} from "../src/membership/intern.ts";
import { MemberRecord, MemberTable } from "../src/membership/member_table.ts";

/** A string equal to `s` but built at run time (a distinct heap string, not a literal). */
function fresh(s: string): string {
  return Array.from(s).join("");
}

function decodeAlive(m: AliveMessage): AliveMessage {
  const w = new ByteWriter(64);
  assert.ok(writeMessage(w, m));
  const decoded = decodeBody(w.toBytes());
  assert.ok(decoded);
  return decoded.messages[0] as AliveMessage;
}

Deno.test("intern: equal strings map to one cache entry and keep their value", () => {
  setInternLimit(INTERN_MAX_ENTRIES);
  const a = internString(fresh("node-42@127.0.0.1:7946"));
  const b = internString(fresh("node-42@127.0.0.1:7946"));
  assert.equal(a, "node-42@127.0.0.1:7946");
  assert.equal(b, a);
  assert.equal(internStats().strings, 1);
  internString(fresh("other"));
  assert.equal(internStats().strings, 2);
});

Deno.test("intern: equal tags return the identical frozen object, in the original key order", () => {
  setInternLimit(INTERN_MAX_ENTRIES);
  const a = internTags({ role: "worker", zone: "eu-1" });
  const b = internTags({ role: "worker", zone: "eu-1" });
  assert.equal(a, b);
  assert.ok(Object.isFrozen(a));
  assert.deepEqual(Object.keys(a), ["role", "zone"]);
  // Different order or values are different tags objects (encoding order is preserved).
  assert.notEqual(internTags({ zone: "eu-1", role: "worker" }), a);
  assert.notEqual(internTags({ role: "worker", zone: "eu-2" }), a);
  // Keys and values that would collide under naive joining stay distinct.
  assert.notEqual(internTags({ "a:b": "c" }), internTags({ a: "b:c" }));
  const proto = internTags(JSON.parse('{"__proto__":"x"}'));
  assert.deepEqual(Object.keys(proto), ["__proto__"]);
  assert.equal(proto["__proto__"], "x");
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepEqual(internTags({}), {});
});

Deno.test("intern: a cache past its bound is cleared instead of growing", () => {
  const prev = setInternLimit(4);
  try {
    for (let i = 0; i < 4; i++) internString(`s${i}`);
    assert.equal(internStats().strings, 4);
    const first = internTags({ k: "0" });
    for (let i = 1; i < 4; i++) internTags({ k: String(i) });
    assert.equal(internStats().tags, 4);
    assert.equal(internString("s4"), "s4"); // 5th entry: cleared, then stored
    assert.equal(internStats().strings, 1);
    internTags({ k: "4" });
    assert.equal(internStats().tags, 1);
    // The old canonical object is forgotten, but values stay correct.
    const again = internTags({ k: "0" });
    assert.notEqual(again, first);
    assert.deepEqual(again, first);
    for (let i = 0; i < 100; i++) internString(`t${i}`);
    assert.ok(internStats().strings <= 4);
  } finally {
    setInternLimit(prev);
  }
});

Deno.test("intern: two member tables fed separately decoded alive messages share tags objects", () => {
  setInternLimit(INTERN_MAX_ENTRIES);
  const msg: AliveMessage = {
    type: "alive",
    node: "n-7",
    incarnation: 3,
    gossipAddr: "127.0.0.1:7000",
    rpcAddr: "127.0.0.1:8000",
    tags: { role: "worker" },
  };
  const t1 = new MemberTable(new MemberRecord("a", "h:1", "", 0, "alive", {}, 0));
  const t2 = new MemberTable(new MemberRecord("b", "h:2", "", 0, "alive", {}, 0));
  const d1 = decodeAlive(msg);
  const d2 = decodeAlive(msg);
  assert.notEqual(d1.tags, d2.tags); // the codec decodes a fresh object per packet
  assert.equal(t1.applyAlive(d1, 1), "joined");
  assert.equal(t2.applyAlive(d2, 1), "joined");
  const r1 = t1.get("n-7")!;
  const r2 = t2.get("n-7")!;
  assert.equal(r1.tags, r2.tags);
  assert.deepEqual(r1.tags, { role: "worker" });
  assert.equal(r1.gossipAddr, "127.0.0.1:7000");
  assert.equal(r2.rpcAddr, "127.0.0.1:8000");
  // A tag update replaces the record's tags with the shared copy too.
  const upd = { ...msg, incarnation: 4, tags: { role: "db" } };
  assert.equal(t1.applyAlive(decodeAlive(upd), 2), "updated");
  assert.equal(t2.applyAlive(decodeAlive(upd), 2), "updated");
  assert.equal(t1.get("n-7")!.tags, t2.get("n-7")!.tags);
  assert.deepEqual(t1.last.previousTags, { role: "worker" });
});
