/**
 * Fuzz target: the payload decoder (`PayloadCodec.decode`/`decodeMeta`, with the structural
 * pre-scan of src/rpc/payload_limits.ts). Valid values round-trip; mutated encodings and
 * hostile container headers only ever fail with `RpcError("invalid_argument")`, quickly, and
 * never build more values than the limits allow.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { encode } from "@msgpack/msgpack";
import { RpcError } from "../mod.ts";
import { PayloadCodec } from "../src/rpc/codec.ts";
import { PayloadLimits } from "../src/rpc/payload_limits.ts";
import { FUZZ_RUNS, mutatedEncodings } from "./_support/fuzz_mutate.ts";

// MessagePack-representable values (no undefined inside containers, no -0, safe integers).
const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -(2 ** 31), max: 2 ** 32 }),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    fc.string({ unit: "grapheme", maxLength: 40 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie("value"), { maxLength: 6 }),
    fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== "__proto__"), tie("value"), {
      maxKeys: 6,
      noNullPrototype: true,
    }),
  ),
}));

const limits = new PayloadLimits({ maxPayloadDepth: 16, maxPayloadElements: 2000 });
const codec = new PayloadCodec(limits);

function onlyInvalidArgument(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!RpcError.is(e, "invalid_argument")) throw e;
  }
}

// Counts the values a decoded result holds (what the element limit bounds).
function size(v: unknown): number {
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + size(x), 1);
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !(v instanceof Date)) {
    return Object.values(v).reduce((n: number, x) => n + size(x), 1);
  }
  return 1;
}

Deno.test(`fuzz payload: valid values round-trip (${FUZZ_RUNS} inputs)`, () => {
  fc.assert(
    fc.property(value, (v) => {
      const bytes = encode(v);
      const out = codec.decode(0, bytes);
      assert.deepEqual(out, v instanceof Uint8Array ? new Uint8Array(v) : v);
    }),
    { numRuns: FUZZ_RUNS },
  );
});

Deno.test(`fuzz payload: mutated and hostile encodings fail only with invalid_argument (${FUZZ_RUNS} inputs)`, () => {
  // Container headers claiming huge counts, to splice into valid encodings.
  const hostile = fc.constantFrom(
    [0xdc, 0xff, 0xff],
    [0xdd, 0xff, 0xff, 0xff, 0xff],
    [0xde, 0x3e, 0x80],
    [0xdf, 0x7f, 0xff, 0xff, 0xff],
    [0xdb, 0xff, 0xff, 0xff, 0xff],
    [0xc6, 0x00, 0x10, 0x00, 0x00],
    [0xc9, 0xff, 0xff, 0xff, 0xff, 0x01],
    [0x9f, 0x9f, 0x9f, 0x9f],
    [0xc1],
  );
  fc.assert(
    fc.property(
      mutatedEncodings(value, (v) => encode(v), hostile),
      (bytes) => {
        onlyInvalidArgument(() => {
          const out = codec.decode(0, bytes);
          assert.ok(size(out) <= limits.maxElements + 1, "more values than the limit");
        });
        onlyInvalidArgument(() => codec.decodeMeta(bytes));
      },
    ),
    { numRuns: FUZZ_RUNS },
  );
});
