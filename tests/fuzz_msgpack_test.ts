/**
 * Fuzz target: the MessagePack decoder (src/rpc/msgpack.ts) on its own, without the payload
 * limits' structural pre-scan in front of it (`fuzz_payload_test.ts` covers the two together).
 * Mutated and hostile encodings only ever fail with `DecodeError` or `RangeError`, quickly, and
 * the decoder accepts exactly the inputs `@msgpack/msgpack` accepts.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { DecodeError, Decoder, encode, ExtData } from "@msgpack/msgpack";
import { MsgpackDecoder } from "../src/rpc/msgpack.ts";
import { FUZZ_RUNS, mutatedEncodings } from "./_support/fuzz_mutate.ts";

const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(null, true, false, -0, 1.5, 2 ** 40, -(2 ** 40), -200, 70_000),
    fc.integer(),
    fc.string({ maxLength: 40 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.date({ noInvalidDate: true }),
    fc.uint8Array({ maxLength: 8 }).map((d) => new ExtData(3, d)),
    fc.array(tie("value"), { maxLength: 6 }),
    fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== "__proto__"), tie("value"), {
      maxKeys: 6,
      noNullPrototype: true,
    }),
  ),
}));

// Container and length headers claiming far more than follows, to splice into valid encodings.
const hostile = fc.constantFrom(
  [0xdc, 0xff, 0xff],
  [0xdd, 0xff, 0xff, 0xff, 0xff],
  [0xde, 0x3e, 0x80],
  [0xdf, 0x7f, 0xff, 0xff, 0xff],
  [0xdb, 0xff, 0xff, 0xff, 0xff],
  [0xc6, 0x00, 0x10, 0x00, 0x00],
  [0xc9, 0xff, 0xff, 0xff, 0xff, 0x01],
  [0xd6, 0xff], // a timestamp of the wrong size once the rest is spliced in
  [0x9f, 0x9f, 0x9f, 0x9f],
  [0x81, 0x90], // an array as a map key
  [0xc1],
);

/** The error a decode threw, or undefined when it returned a value. */
function failure(f: () => unknown): unknown {
  try {
    f();
    return undefined;
  } catch (e) {
    return e;
  }
}

Deno.test(`fuzz msgpack: mutated and hostile encodings fail only with DecodeError or RangeError, exactly when the library fails (${FUZZ_RUNS} inputs)`, () => {
  const ours = new MsgpackDecoder();
  const library = new Decoder();
  fc.assert(
    fc.property(
      mutatedEncodings(value, (v) => encode(v), hostile),
      (bytes) => {
        const e = failure(() => ours.decode(bytes, (view) => view.slice()));
        if (e !== undefined) {
          assert.ok(e instanceof DecodeError || e instanceof RangeError, `threw ${e}`);
        }
        const libraryFailed = failure(() => library.decode(bytes.slice())) !== undefined;
        assert.equal(e !== undefined, libraryFailed, `accepts what the library accepts: ${bytes}`);
      },
    ),
    { numRuns: FUZZ_RUNS },
  );
});
