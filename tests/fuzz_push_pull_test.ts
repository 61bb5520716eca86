/**
 * Fuzz target (issue 9, "Keep it proven"): the push-pull (full state sync) decoder
 * (`decodePushPull` of src/membership/codec.ts), which reads unauthenticated TCP input when no
 * keyring is set. Property-based with fast-check: valid syncs round-trip; mutations of valid
 * syncs (bit flips, byte overwrites, truncation, insertion, splices, a forged record count) and
 * random bytes only ever yield `undefined` (a drop) or records, never an exception, quickly,
 * with allocation bounded by the input (no record count the bytes cannot hold is believed).
 *
 * 100,000 inputs per property by default; `RPCNET_FUZZ_RUNS` overrides (the fuzz task runs
 * 1,000,000).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { FUZZ_RUNS as RUNS, mutate, mutations, withinTime } from "./_support/fuzz_mutate.ts";
import {
  ByteWriter,
  decodePushPull,
  type PushPullMessage,
  type PushPullRecord,
  writePushPull,
} from "../src/membership/codec.ts";

const str8 = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.string({ maxLength: 24, unit: "binary" }),
);
const id = str8.filter((s) => s.length > 0);
const tags = fc.dictionary(
  id.filter((k) => k !== "__proto__"),
  str8,
  { maxKeys: 4 },
).map((t) => Object.freeze({ ...t }));

const record: fc.Arbitrary<PushPullRecord> = fc.record({
  node: id,
  gossipAddr: str8,
  rpcAddr: str8,
  incarnation: fc.nat({ max: 0xffff_ffff }),
  state: fc.constantFrom("alive" as const, "suspect" as const, "dead" as const, "left" as const),
  tags,
});
const sync: fc.Arbitrary<PushPullMessage> = fc.record({
  type: fc.constant("push-pull" as const),
  join: fc.boolean(),
  records: fc.array(record, { maxLength: 12 }),
});

function encode(m: PushPullMessage): Uint8Array {
  const w = new ByteWriter(256);
  writePushPull(w, m);
  return w.toBytes();
}

/** Decodes like the sync handler; checks time and output bounds; -1 for a drop. */
function decode(body: Uint8Array): number {
  const m = withinTime(() => decodePushPull(body, 0, 16_384));
  if (m === undefined) return -1;
  // Every record takes at least 9 bytes: a count the bytes cannot hold is never allocated.
  assert.ok(m.records.length * 9 <= body.length);
  return m.records.length;
}

Deno.test("fuzz push-pull: valid syncs round-trip", () => {
  fc.assert(
    fc.property(sync, (m) => {
      const d = decodePushPull(encode(m));
      assert.ok(d !== undefined);
      assert.deepEqual(d, { ...m, records: m.records.map((r) => ({ ...r })) });
    }),
    {
      numRuns: RUNS,
      // A string starting with U+FEFF must keep it (the decoder used to eat it as a "BOM").
      examples: [[{
        type: "push-pull",
        join: false,
        records: [{
          node: "\ufeffn",
          gossipAddr: "\ufeff",
          rpcAddr: "",
          incarnation: 1,
          state: "alive",
          tags: {},
        }],
      }]],
    },
  );
});

Deno.test("fuzz push-pull: mutated valid syncs are dropped or decoded, never thrown", () => {
  fc.assert(
    fc.property(sync, mutations(4), (m, ops) => {
      decode(mutate(encode(m), ops));
    }),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz push-pull: a forged record count is never believed past the bytes", () => {
  fc.assert(
    fc.property(sync, fc.nat({ max: 0xffff_ffff }), (m, count) => {
      const body = encode(m);
      new DataView(body.buffer).setUint32(2, count);
      const n = decode(body);
      if (count !== m.records.length) assert.equal(n, -1);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz push-pull: random bytes never throw", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), fc.boolean(), (bytes, typed) => {
      // Half the inputs start like a push-pull (type 10), so the record loop is reached.
      if (typed && bytes.length > 0) bytes[0] = 10;
      decode(bytes);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz time bound: a one-off pause passes, a decode slow every time fails", () => {
  const busy = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until) { /* spin */ }
  };
  let calls = 0;
  assert.equal(withinTime(() => (calls++ === 0 ? busy(60) : undefined, 7)), 7);
  assert.equal(calls, 2, "the slow first run was repeated");
  assert.throws(() => withinTime(() => busy(60)), /twice/);
});
