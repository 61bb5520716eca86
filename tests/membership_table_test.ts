import assert from "node:assert/strict";
import type { AliveMessage, DeadMessage, SuspectMessage } from "../src/membership/codec.ts";
import { MemberRecord, MemberTable } from "../src/membership/member_table.ts";

function table(): MemberTable {
  return new MemberTable(new MemberRecord("self", "h:0", "", 5, "alive", {}, 0));
}

function alive(node: string, incarnation: number, tags = {}): AliveMessage {
  return { type: "alive", node, incarnation, gossipAddr: `h:${node}`, rpcAddr: "", tags };
}

function suspect(node: string, incarnation: number, from: string): SuspectMessage {
  return { type: "suspect", node, incarnation, from };
}

function dead(node: string, incarnation: number, from: string): DeadMessage {
  return { type: "dead", node, incarnation, from };
}

Deno.test("member table: a new alive member joins; stale or equal alive is ignored", () => {
  const t = table();
  assert.equal(t.applyAlive(alive("a", 1), 1), "joined");
  assert.equal(t.liveCount, 2);
  assert.equal(t.applyAlive(alive("a", 1), 2), "ignored");
  assert.equal(t.applyAlive(alive("a", 0), 2), "ignored");
  assert.equal(t.applyAlive(alive("a", 2), 3), "refreshed");
  assert.equal(t.applyAlive(alive("a", 3, { role: "w" }), 4), "updated");
  assert.deepEqual(t.last.previousTags, {});
  assert.deepEqual(t.get("a")!.tags, { role: "w" });
});

Deno.test("member table: suspect beats alive at equal incarnation; only higher alive recovers", () => {
  const t = table();
  t.applyAlive(alive("a", 3), 0);
  assert.equal(
    t.applySuspect(suspect("a", 2, "x"), 1),
    "ignored",
  );
  assert.equal(
    t.applySuspect(suspect("a", 3, "x"), 1),
    "suspected",
  );
  assert.equal(t.get("a")!.state, "suspect");
  assert.equal(
    t.applySuspect(suspect("a", 3, "y"), 1),
    "confirm",
  );
  assert.equal(t.applyAlive(alive("a", 3), 2), "ignored");
  assert.equal(t.get("a")!.state, "suspect");
  assert.equal(t.applyAlive(alive("a", 4), 2), "recovered");
  assert.equal(t.get("a")!.state, "alive");
  assert.equal(
    t.applySuspect(suspect("zz", 9, "y"), 1),
    "ignored",
  );
});

Deno.test("member table: dead/left beat suspect and alive at equal incarnation; tombstones are not resurrected", () => {
  const t = table();
  t.applyAlive(alive("a", 3), 0);
  t.applySuspect(suspect("a", 3, "x"), 1);
  assert.equal(t.applyDead(dead("a", 2, "x"), 2), "ignored");
  assert.equal(t.applyDead(dead("a", 3, "x"), 2), "failed");
  assert.equal(t.liveCount, 1);
  // A later sync carrying the old alive record does not bring it back.
  assert.equal(t.applyAlive(alive("a", 3), 3), "ignored");
  assert.equal(
    t.applySuspect(suspect("a", 3, "x"), 3),
    "ignored",
  );
  assert.equal(t.applyDead({ type: "leave", node: "a", incarnation: 3 }, 3), "ignored");
  assert.equal(t.get("a")!.state, "dead");
  // The member itself, restarted with a higher incarnation, rejoins.
  assert.equal(t.applyAlive(alive("a", 4), 4), "rejoined");
  assert.equal(t.liveCount, 2);
  assert.equal(t.applyDead({ type: "leave", node: "a", incarnation: 4 }, 5), "left");
  assert.equal(t.get("a")!.state, "left");
  // Dead members we never knew are not learnt.
  assert.equal(t.applyDead(dead("b", 1, "x"), 5), "ignored");
  assert.equal(t.get("b"), undefined);
});

Deno.test("member table: messages contradicting our own record ask for a refutation", () => {
  const t = table();
  assert.equal(
    t.applySuspect(suspect("self", 5, "x"), 1),
    "refute",
  );
  assert.equal(
    t.applySuspect(suspect("self", 4, "x"), 1),
    "ignored",
  );
  assert.equal(t.applyDead(dead("self", 5, "x"), 1), "refute");
  assert.equal(
    t.applyDead(dead("self", 5, "x"), 1, true),
    "ignored",
  );
  assert.equal(t.applyAlive({ ...alive("self", 6), gossipAddr: "h:0" }, 1), "refute");
  assert.equal(t.applyAlive({ ...alive("self", 5), gossipAddr: "h:0" }, 1), "ignored");
  assert.equal(t.applyAlive({ ...alive("self", 5), gossipAddr: "other:1" }, 1), "conflict");
  assert.equal(t.local.state, "alive");
  assert.equal(t.local.incarnation, 5);
});

Deno.test("member table: tombstones are reaped after the interval, live members never", () => {
  const t = table();
  t.applyAlive(alive("a", 1), 0);
  t.applyAlive(alive("b", 1), 0);
  t.applyDead(dead("a", 1, "x"), 100);
  t.applyDead({ type: "leave", node: "b", incarnation: 1 }, 200);
  assert.deepEqual(t.reap(150, 100), []);
  assert.deepEqual(t.reap(250, 100), ["a"]);
  assert.equal(t.size, 2);
  assert.deepEqual(t.reap(10_000, 100), ["b"]);
  assert.equal(t.size, 1);
  assert.equal(t.get("self")!.state, "alive");
});

Deno.test("member table: ring successors wrap around and random picks exclude self and target", () => {
  const t = table();
  for (const id of ["a", "c", "e", "g", "z"]) t.applyAlive(alive(id, 1), 0);
  assert.deepEqual(t.ring, ["a", "c", "e", "g", "self", "z"]);
  assert.deepEqual(t.successors("self", 3), ["z", "a", "c"]);
  assert.deepEqual(t.successors("g", 10), ["self", "z", "a", "c", "e"]);
  let s = 7;
  const rnd = () => (s = (s * 48271) % 2147483647) / 2147483647;
  for (let i = 0; i < 50; i++) {
    const picks = t.randomLive(3, rnd, "c").map((r) => r.id);
    assert.equal(new Set(picks).size, 3);
    assert.ok(!picks.includes("self") && !picks.includes("c"));
  }
  assert.equal(t.randomLive(10, rnd).length, 5);
});

Deno.test("member table: a suspicion of a newer incarnation starts a new episode, not a confirmation", () => {
  const t = table();
  t.applyAlive(alive("a", 1), 0);
  assert.equal(
    t.applySuspect(suspect("a", 1, "x"), 1),
    "suspected",
  );
  // "a" refuted (incarnation 2) but we missed it; now someone suspects incarnation 2.
  assert.equal(
    t.applySuspect(suspect("a", 2, "y"), 5),
    "suspected",
  );
  assert.equal(t.get("a")!.incarnation, 2);
  assert.equal(t.get("a")!.stateChangedAt, 5);
  assert.equal(
    t.applySuspect(suspect("a", 2, "z"), 6),
    "confirm",
  );
});

Deno.test("member table: records share one interned identity; changing one member's tags leaves other tables alone", () => {
  const t1 = table();
  const t2 = table();
  t1.applyAlive(alive("a", 1, { role: "w" }), 1);
  t2.applyAlive(alive("a", 1, { role: "w" }), 2);
  const a1 = t1.get("a")!;
  const a2 = t2.get("a")!;
  assert.equal(a1.tags, a2.tags, "one frozen tags object for equal values");
  assert.equal(t1.applyAlive(alive("a", 2, { role: "x" }), 3), "updated");
  assert.deepEqual(a1.tags, { role: "x" });
  assert.deepEqual(a2.tags, { role: "w" }, "the other table's record is untouched");
  assert.equal(a2.gossipAddr, "h:a");
  a2.gossipAddr = "h:moved";
  assert.equal(a2.gossipAddr, "h:moved");
  assert.equal(a1.gossipAddr, "h:a");
  // State and the state-change time (whole milliseconds) are per record.
  assert.equal(
    t1.applySuspect(suspect("a", 2, "x"), 7.6),
    "suspected",
  );
  assert.equal(a1.state, "suspect");
  assert.equal(a1.stateChangedAt, 8);
  assert.equal(a2.state, "alive");
  assert.equal(a2.stateChangedAt, 2);
  assert.equal(t1.applyDead(dead("a", 2, "x"), 9), "failed");
  assert.equal(a1.live, false);
  assert.equal(a2.live, true);
});

Deno.test("member table: preload adds alive members in bulk, the ring sorted as one-by-one adds would sort it", () => {
  const ids = Array.from({ length: 200 }, (_, i) => `m${(i * 7919) % 1000}`);
  const one = table();
  for (const id of ids) one.applyAlive(alive(id, 0), 1);
  const bulk = table();
  const v0 = bulk.version;
  const seeds = ids.map((id) => ({
    id,
    gossipAddr: `h:${id}`,
    rpcAddr: "",
    incarnation: 0,
    tags: {},
  }));
  // The local id and duplicates are skipped.
  assert.equal(bulk.preload([...seeds, seeds[0], { ...seeds[1], id: "self" }], 1), 200);
  assert.ok(bulk.version > v0);
  assert.deepEqual(bulk.ring, one.ring);
  assert.equal(bulk.liveCount, 201);
  assert.deepEqual(bulk.successors(ids[5], 3), one.successors(ids[5], 3));
  assert.equal(bulk.get(ids[5])!.state, "alive");
  assert.equal(bulk.preload(seeds, 2), 0, "known members are not re-added");
  // Preloaded members follow the normal precedence rules afterwards.
  assert.equal(
    bulk.applySuspect(suspect(ids[5], 0, "x"), 3),
    "suspected",
  );
  assert.equal(bulk.applyAlive(alive(ids[5], 1), 4), "recovered");
});

Deno.test("member table: a live member's id at another address is a conflict; a dead one may move", () => {
  const t = table();
  t.applyAlive(alive("a", 1), 1);
  const elsewhere = { ...alive("a", 2), gossipAddr: "h:other" };
  assert.equal(t.applyAlive(elsewhere, 2), "conflict");
  assert.equal(t.get("a")!.gossipAddr, "h:a", "the record already held is kept");
  assert.equal(t.get("a")!.incarnation, 1);
  assert.equal(t.applyAlive({ ...alive("a", 1), gossipAddr: "h:other" }, 2), "conflict");
  assert.equal(t.applyAlive({ ...alive("a", 0), gossipAddr: "h:other" }, 2), "ignored", "stale");
  t.applySuspect(suspect("a", 1, "x"), 3);
  assert.equal(t.applyAlive(elsewhere, 4), "conflict", "a suspect is still live");
  t.applyDead(dead("a", 1, "x"), 5);
  assert.equal(t.applyAlive(elsewhere, 6), "rejoined", "restarted elsewhere after its death");
  assert.equal(t.get("a")!.gossipAddr, "h:other");
  // Our own id at another address: a conflict, not a refutation (no war of incarnations).
  assert.equal(t.applyAlive({ ...alive("self", 9), gossipAddr: "h:impostor" }, 7), "conflict");
  assert.equal(t.applyAlive({ ...alive("self", 9), gossipAddr: "h:0" }, 7), "refute");
});
