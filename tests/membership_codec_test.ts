import assert from "node:assert/strict";
import {
  ByteWriter,
  decodeBody,
  decodePushPull,
  encodeMessage,
  type GossipMessage,
  parseHeader,
  type PushPullRecord,
  writeHeader,
  writeMessage,
  writePushPull,
} from "../src/membership/codec.ts";

const ALL: GossipMessage[] = [
  { type: "ping", seq: 7, target: "node-a" },
  { type: "ping", seq: 0xffffffff, target: "" },
  { type: "ack", seq: 42 },
  { type: "nack", seq: 43 },
  { type: "ping-req", seq: 9, target: "node-b", targetAddr: "127.0.0.1:7946", nack: true },
  { type: "suspect", node: "node-c", incarnation: 3, from: "node-a" },
  {
    type: "alive",
    node: "nöde-d",
    incarnation: 12,
    gossipAddr: "127.0.0.1:1",
    rpcAddr: "127.0.0.1:2",
    tags: { role: "worker", zone: "eu-1" },
  },
  { type: "alive", node: "e", incarnation: 0, gossipAddr: "h:1", rpcAddr: "", tags: {} },
  { type: "dead", node: "node-f", incarnation: 5, from: "node-g" },
  { type: "leave", node: "node-h", incarnation: 6 },
  { type: "user", origin: "node-a", seq: 77, payload: new Uint8Array([1, 2, 3, 255]) },
];

Deno.test("codec: every message type round-trips inside one compound packet", () => {
  const w = new ByteWriter(16);
  const label = new TextEncoder().encode("prod");
  writeHeader(w, label, 0);
  const bodyStart = w.length;
  for (const m of ALL) assert.ok(writeMessage(w, m));
  const packet = w.toBytes();
  const h = parseHeader(packet, label);
  assert.deepEqual(h, { ok: true, sealed: false, bodyOffset: bodyStart });
  const decoded = decodeBody(packet, bodyStart);
  assert.ok(decoded);
  assert.equal(decoded.unknown, 0);
  assert.deepEqual(decoded.messages, ALL);
});

Deno.test("codec: header rejects other labels, versions and flags", () => {
  const label = new TextEncoder().encode("a");
  const w = new ByteWriter();
  writeHeader(w, label, 0);
  w.bytes(encodeMessage({ type: "ack", seq: 1 }));
  const p = w.toBytes();
  assert.deepEqual(parseHeader(p, new TextEncoder().encode("b")), { ok: false, reason: "label" });
  assert.deepEqual(parseHeader(p, new Uint8Array()), { ok: false, reason: "label" });
  const v = p.slice();
  v[0] = 9;
  assert.deepEqual(parseHeader(v, label), { ok: false, reason: "version" });
  const f = p.slice();
  f[1] = 0x80;
  assert.deepEqual(parseHeader(f, label), { ok: false, reason: "malformed" });
  assert.deepEqual(parseHeader(p.subarray(0, 2), label), { ok: false, reason: "malformed" });
});

Deno.test("codec: malformed bodies decode to undefined, never throw", () => {
  const good = encodeMessage(ALL[6]);
  // Every truncation of a valid message is rejected.
  for (let n = 1; n < good.length; n++) assert.equal(decodeBody(good.subarray(0, n)), undefined);
  // Empty body, a length past the end, trailing bytes inside a message, invalid UTF-8.
  assert.equal(decodeBody(new Uint8Array()), undefined);
  assert.equal(decodeBody(new Uint8Array([2, 0xff, 0xff, 0, 0, 0, 1])), undefined);
  assert.equal(decodeBody(new Uint8Array([2, 0, 5, 0, 0, 0, 1, 9])), undefined);
  assert.equal(decodeBody(new Uint8Array([1, 0, 7, 0, 0, 0, 1, 2, 0xc3, 0x28])), undefined);
  // Empty node id (a leave of "").
  assert.equal(decodeBody(new Uint8Array([8, 0, 5, 0, 0, 0, 1, 0])), undefined);
  assert.ok(decodeBody(new Uint8Array([8, 0, 6, 0, 0, 0, 1, 1, 120])));
  // Random garbage: never throws.
  let seed = 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(Math.floor(rnd() * 64));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
    decodeBody(b);
    decodePushPull(b);
  }
});

Deno.test("codec: unknown message types are skipped and counted", () => {
  const w = new ByteWriter();
  w.bytes(new Uint8Array([200, 0, 2, 9, 9]));
  w.bytes(encodeMessage({ type: "ack", seq: 5 }));
  const d = decodeBody(w.toBytes());
  assert.ok(d);
  assert.equal(d.unknown, 1);
  assert.deepEqual(d.messages, [{ type: "ack", seq: 5 }]);
});

Deno.test("codec: push-pull state round-trips; bad counts and states are rejected", () => {
  const w = new ByteWriter(8);
  const records: PushPullRecord[] = [
    {
      node: "a",
      gossipAddr: "127.0.0.1:1",
      rpcAddr: "127.0.0.1:2",
      incarnation: 4,
      state: "alive",
      tags: { role: "worker" },
    },
    { node: "b", gossipAddr: "x:1", rpcAddr: "", incarnation: 0, state: "dead", tags: {} },
    { node: "c", gossipAddr: "x:2", rpcAddr: "", incarnation: 9, state: "left", tags: {} },
    { node: "d", gossipAddr: "x:3", rpcAddr: "", incarnation: 1, state: "suspect", tags: {} },
  ];
  writePushPull(w, { type: "push-pull", join: true, records });
  const bytes = w.toBytes();
  assert.deepEqual(decodePushPull(bytes), { type: "push-pull", join: true, records });
  for (let n = 0; n < bytes.length; n++) {
    assert.equal(decodePushPull(bytes.subarray(0, n)), undefined);
  }
  const huge = bytes.slice();
  huge[2] = 0xff; // count 0xff000004: more records than bytes
  assert.equal(decodePushPull(huge), undefined);
  const extra = new Uint8Array(bytes.length + 1);
  extra.set(bytes);
  assert.equal(decodePushPull(extra), undefined);
});

Deno.test("codec: strings over 255 bytes are refused by the writer", () => {
  const w = new ByteWriter();
  assert.throws(() => w.str8("x".repeat(256)), RangeError);
  assert.equal(w.length, 0);
});
