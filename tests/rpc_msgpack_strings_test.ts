/**
 * The payload codec's fast MessagePack string paths (src/rpc/msgpack_strings.ts): the same bytes
 * as the library for every well-formed string, uniform handling of invalid UTF-8 and of a
 * leading U+FEFF, and no patch at all on an encoder or decoder that lacks the internals.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Decoder, encode, Encoder } from "@msgpack/msgpack";
import { PayloadCodec } from "../src/rpc/codec.ts";
import { installFastStrings } from "../src/rpc/msgpack_strings.ts";

function fast(): { enc: Encoder; dec: Decoder } {
  const enc = new Encoder();
  const dec = new Decoder();
  assert.equal(installFastStrings(enc, dec), true, "the fast paths install on this library");
  return { enc, dec };
}

Deno.test("msgpack strings: well-formed strings of every length and script encode to the library's bytes and round-trip", () => {
  const { enc, dec } = fast();
  const lengths = [0, 1, 15, 16, 17, 31, 32, 33, 85, 86, 255, 256, 5000, 16_384, 16_385, 70_000];
  const samples = ["a", "é", "ж", "€", "\u{1F600}"];
  for (const n of lengths) {
    for (const unit of samples) {
      const s = unit.repeat(Math.ceil(n / unit.length)).slice(0, n).replace(/[\uD800-\uDBFF]$/, "");
      assert.deepEqual(enc.encode(s), encode(s), `${JSON.stringify(unit)} × ${n}`);
      assert.equal(dec.decode(enc.encode(s)), s);
    }
  }
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 300 }), (s) => {
      const bytes = enc.encode({ k: s, list: [s, s.length] });
      assert.deepEqual(bytes, encode({ k: s, list: [s, s.length] }));
      assert.deepEqual(dec.decode(bytes), { k: s, list: [s, s.length] });
    }),
    { numRuns: 2000 },
  );
});

Deno.test("msgpack strings: invalid UTF-8 decodes to U+FFFD at every length, and a leading U+FEFF is kept", () => {
  const { dec } = fast();
  for (const n of [4, 16, 40, 199, 250]) {
    // str 8/16 with a stray 0xff at the end: the library's own loop made it "ÿ" below 201 bytes.
    const body = [...new Array(n - 1).fill(0x61), 0xff];
    const header = n < 256 ? [0xd9, n] : [0xda, n >> 8, n & 0xff];
    const s = dec.decode(new Uint8Array([...header, ...body])) as string;
    assert.equal(s.length, n);
    assert.equal(s.at(-1), "\uFFFD", `${n} bytes`);
  }
  for (const n of [3, 40, 300]) {
    const s = "\uFEFF" + "b".repeat(n);
    assert.equal(dec.decode(encode(s)), s, `U+FEFF kept before ${n} characters`);
  }
  // Through the codec the RPC layer uses.
  const codec = new PayloadCodec();
  const s = "\uFEFF" + "c".repeat(500);
  assert.equal(codec.decode(0, codec.encode(s).slice()), s);
});

Deno.test("msgpack strings: truncated input and map keys still go through the library's checks", () => {
  const { dec } = fast();
  // A str 8 of 40 bytes with 10 present.
  assert.throws(
    () => dec.decode(new Uint8Array([0xd9, 40, ...new Array(10).fill(0x61)])),
    RangeError,
  );
  const small = new Decoder({ maxStrLength: 8 });
  assert.equal(installFastStrings(new Encoder(), small), true);
  assert.throws(() => small.decode(encode("x".repeat(20))), /maxStrLength/);
  assert.deepEqual(dec.decode(encode({ ["k".repeat(20)]: "v".repeat(20) })), {
    ["k".repeat(20)]: "v".repeat(20),
  });
});

Deno.test("msgpack strings: an encoder or decoder without the expected internals is left alone", () => {
  const enc = new Encoder();
  const dec = new Decoder();
  const foreign = { encode: enc.encode.bind(enc) } as unknown as Encoder;
  assert.equal(installFastStrings(foreign, dec), false);
  assert.equal(installFastStrings(enc, {} as Decoder), false);
});
