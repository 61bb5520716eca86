/**
 * Fuzz target (issue 9, "Keep it proven"): the gossip datagram decoder (`parseHeader` +
 * `decodeBody` of src/membership/codec.ts). Property-based with fast-check: valid datagrams
 * round-trip; mutations of valid datagrams (bit flips, byte overwrites, truncation, insertion,
 * splices) and random bytes only ever yield a drop (`undefined` / a refused header) or messages,
 * never an exception, quickly, and with output bounded by the input size.
 *
 * 100,000 inputs per property by default; `RPCNET_FUZZ_RUNS` overrides (the fuzz task runs
 * 1,000,000).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { FUZZ_RUNS as RUNS, mutate, mutations, withinTime } from "./_support/fuzz_mutate.ts";
import {
  ByteWriter,
  decodeBody,
  type GossipMessage,
  parseHeader,
  writeHeader,
  writeMessage,
} from "../src/membership/codec.ts";

const LABEL = new TextEncoder().encode("prod");

// Mostly ASCII (ids, addresses), sometimes any code point (the decoder's UTF-8 path); at most
// 24 code points, so always within the 255-byte string limit.
const str8 = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.string({ maxLength: 24, unit: "binary" }),
);
const id = str8.filter((s) => s.length > 0);
const u32 = fc.nat({ max: 0xffff_ffff });
const tags = fc.dictionary(
  id.filter((k) => k !== "__proto__"),
  str8,
  { maxKeys: 4 },
).map((t) => Object.freeze({ ...t }));

const message: fc.Arbitrary<GossipMessage> = fc.oneof(
  fc.record({ type: fc.constant("ping" as const), seq: u32, target: str8 }),
  fc.record({ type: fc.constant("ack" as const), seq: u32 }),
  fc.record({ type: fc.constant("nack" as const), seq: u32 }),
  fc.record({
    type: fc.constant("ping-req" as const),
    seq: u32,
    target: str8,
    targetAddr: str8,
    nack: fc.boolean(),
  }),
  fc.record({ type: fc.constant("suspect" as const), node: id, incarnation: u32, from: str8 }),
  fc.record({ type: fc.constant("dead" as const), node: id, incarnation: u32, from: str8 }),
  fc.record({
    type: fc.constant("alive" as const),
    node: id,
    incarnation: u32,
    gossipAddr: str8,
    rpcAddr: str8,
    tags,
  }),
  fc.record({ type: fc.constant("leave" as const), node: id, incarnation: u32 }),
  fc.record({
    type: fc.constant("user" as const),
    origin: str8,
    seq: u32,
    payload: fc.uint8Array({ maxLength: 64 }),
  }),
);

function encode(messages: readonly GossipMessage[], sealed = false): Uint8Array {
  const w = new ByteWriter(256);
  writeHeader(w, LABEL, sealed ? 1 : 0);
  for (const m of messages) assert.ok(writeMessage(w, m));
  return w.toBytes();
}

/** Decodes like the receive loop; returns the message count, or -1 for a drop. */
function decodeDatagram(packet: Uint8Array): number {
  const h = parseHeader(packet, LABEL);
  if (!h.ok) return -1;
  // No hang: a 1400-byte datagram decodes in well under 50 ms even on a loaded machine.
  const d = withinTime(() => decodeBody(packet, h.bodyOffset));
  if (d === undefined) return -1;
  // Bounded output: every message takes at least 3 bytes on the wire.
  assert.ok(d.messages.length + d.unknown <= (packet.length - h.bodyOffset) / 3);
  for (const m of d.messages) {
    for (const v of Object.values(m)) {
      if (typeof v === "string") assert.ok(v.length <= 255);
      if (v instanceof Uint8Array) assert.ok(v.length <= packet.length);
    }
  }
  return d.messages.length;
}

Deno.test("fuzz gossip datagram: valid datagrams round-trip", () => {
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 6 }), (messages) => {
      const packet = encode(messages);
      const h = parseHeader(packet, LABEL);
      assert.ok(h.ok && !h.sealed);
      const d = decodeBody(packet, h.bodyOffset);
      assert.ok(d !== undefined);
      assert.equal(d.unknown, 0);
      // fast-check builds null-prototype records: compare as plain objects.
      assert.deepEqual(d.messages, messages.map((m) => ({ ...m })));
    }),
    {
      numRuns: RUNS,
      // Found by this target: a string starting with U+FEFF lost it (the decoder ate a "BOM").
      examples: [[[{
        type: "alive",
        node: "\ufeffn",
        incarnation: 0,
        gossipAddr: "",
        rpcAddr: "\ufeff",
        tags: {},
      }]]],
    },
  );
});

Deno.test("fuzz gossip datagram: mutated valid datagrams are dropped or decoded, never thrown", () => {
  fc.assert(
    fc.property(
      fc.array(message, { minLength: 1, maxLength: 6 }),
      mutations(4),
      (messages, ops) => {
        decodeDatagram(mutate(encode(messages), ops));
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz gossip datagram: random bytes (behind a valid header and raw) never throw", () => {
  const header = encode([]).slice(0, 3 + LABEL.length);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1400 }), fc.boolean(), (bytes, withHeader) => {
      const packet = withHeader ? new Uint8Array([...header, ...bytes]) : bytes;
      decodeDatagram(packet);
    }),
    { numRuns: RUNS },
  );
});
