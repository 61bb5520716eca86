import assert from "node:assert/strict";
import { BroadcastQueue } from "../src/membership/broadcast_queue.ts";
import { retransmitLimit } from "../src/membership/config.ts";

function msg(tag: number, size = 10): Uint8Array {
  return new Uint8Array(size).fill(tag);
}

function takeAll(q: BroadcastQueue, budget: number): number[] {
  const out: number[] = [];
  q.take(budget, 0, (b) => out.push(b[0]));
  return out;
}

Deno.test("broadcast queue: retransmit limit is mult × ceil(log10(N+1))", () => {
  assert.equal(retransmitLimit(4, 1), 4);
  assert.equal(retransmitLimit(4, 9), 4);
  assert.equal(retransmitLimit(4, 10), 8);
  assert.equal(retransmitLimit(4, 1000), 16);
  assert.equal(retransmitLimit(3, 10_000), 15);
  let n = 9;
  const q = new BroadcastQueue(2, () => n);
  assert.equal(q.limit, 2);
  n = 99;
  assert.equal(q.limit, 4);
});

Deno.test("broadcast queue: each broadcast is sent exactly limit times, then dropped", () => {
  const q = new BroadcastQueue(3, () => 5); // limit 3
  let done = 0;
  q.queue("a", msg(1), (sent) => {
    assert.equal(sent, true);
    done++;
  });
  for (let i = 0; i < 3; i++) assert.deepEqual(takeAll(q, 100), [1]);
  assert.equal(q.size, 0);
  assert.equal(done, 1);
  assert.deepEqual(takeAll(q, 100), []);
});

Deno.test("broadcast queue: least-sent first, newest first among equals; budget respected", () => {
  const q = new BroadcastQueue(4, () => 5);
  q.queue("a", msg(1));
  q.queue("b", msg(2));
  assert.deepEqual(takeAll(q, 10), [2]); // only one fits: the newest
  q.queue("c", msg(3));
  // a (0 sends) and c (0 sends) before b (1 send); c is newer than a.
  assert.deepEqual(takeAll(q, 25), [3, 1]);
  // All sent once now: the two re-filed last come first, in their order.
  assert.deepEqual(takeAll(q, 100), [3, 1, 2]);
});

Deno.test("broadcast queue: a newer broadcast about the same member invalidates the older", () => {
  const q = new BroadcastQueue(4, () => 5);
  const outcomes: boolean[] = [];
  q.queue("a", msg(1), (sent) => outcomes.push(sent));
  takeAll(q, 100);
  q.queue("a", msg(2));
  assert.deepEqual(outcomes, [false]);
  assert.equal(q.size, 1);
  assert.deepEqual(takeAll(q, 100), [2]);
  // Anonymous (user) broadcasts never collide.
  q.queue(undefined, msg(5));
  q.queue(undefined, msg(6));
  assert.equal(q.size, 3);
});

Deno.test("broadcast queue: overhead is counted and oversize entries are skipped, not lost", () => {
  const q = new BroadcastQueue(4, () => 5);
  q.queue("big", msg(9, 50));
  q.queue("small", msg(8, 5));
  const got: number[] = [];
  const used = q.take(20, 3, (b) => got.push(b[0]));
  assert.deepEqual(got, [8]);
  assert.equal(used, 8);
  assert.deepEqual(takeAll(q, 100), [9, 8]);
});

Deno.test("broadcast queue: depth is bounded, the most-sent are pruned first", () => {
  const q = new BroadcastQueue(4, () => 5, 3);
  q.queue("a", msg(1));
  takeAll(q, 100); // a sent once
  q.queue("b", msg(2));
  q.queue("c", msg(3));
  q.queue("d", msg(4));
  assert.equal(q.size, 3);
  assert.equal(q.pruned, 1);
  assert.equal(q.has("a"), false);
});
