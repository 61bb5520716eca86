/**
 * The payload codec's own MessagePack encoder and decoder (src/rpc/msgpack.ts) against the
 * library they replace on the hot path: the same bytes for every value the library encodes,
 * the same values for every input it decodes, the same refusals, and the deliberate
 * differences (uniform UTF-8 handling, copied `bin` data, bounded recursion).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { decode, DecodeError, encode, ExtData } from "@msgpack/msgpack";
import { MAX_DECODE_DEPTH, MsgpackDecoder, MsgpackEncoder } from "../src/rpc/msgpack.ts";
import { PayloadCodec } from "../src/rpc/codec.ts";
import { PayloadLimits } from "../src/rpc/payload_limits.ts";
import { RpcError } from "../mod.ts";

const enc = new MsgpackEncoder();
const dec = new MsgpackDecoder();

// Every value kind, including the ones the RPC fuzz targets leave out (undefined inside
// containers, -0, unsafe integers, NaN, Date, ExtData, typed arrays other than Uint8Array).
const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(null, undefined, true, false, -0, NaN, Infinity, -Infinity),
    fc.integer({ min: -(2 ** 31) - 10, max: 2 ** 32 + 10 }),
    fc.integer({ min: -40, max: 300 }),
    fc.maxSafeInteger(),
    fc.double(),
    fc.constantFrom(2 ** 53, -(2 ** 53), 2 ** 63, -(2 ** 63), 1.5, -1.5, 0.1),
    fc.string({ unit: "grapheme", maxLength: 40 }),
    fc.string({ unit: "binary", maxLength: 40 }).map((s) => s.toWellFormed()),
    fc.uint8Array({ maxLength: 300 }),
    fc.date({ noInvalidDate: true }),
    fc.tuple(fc.integer({ min: 0, max: 127 }), fc.uint8Array({ maxLength: 20 })).map(
      ([t, d]) => new ExtData(t, d),
    ),
    fc.array(tie("value"), { maxLength: 20 }),
    fc.dictionary(fc.string({ maxLength: 20 }).filter((k) => k !== "__proto__"), tie("value"), {
      maxKeys: 20,
      noNullPrototype: true,
    }),
  ),
}));

Deno.test("msgpack: every value encodes to the library's bytes and decodes to the library's value", () => {
  fc.assert(
    fc.property(value, (v) => {
      const want = encode(v);
      assert.deepEqual(enc.encode(v), want);
      assert.deepEqual(enc.encodeShared(v), want);
      assert.deepEqual(dec.decode(want), decode(want));
    }),
    { numRuns: 3000 },
  );
});

Deno.test("msgpack: header boundaries of every type match the library", () => {
  const lengths = [0, 1, 15, 16, 31, 32, 255, 256, 65_535, 65_536, 70_000];
  const ints = [
    0,
    127,
    128,
    255,
    256,
    65_535,
    65_536,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 53 - 1,
    -1,
    -32,
    -33,
    -128,
    -129,
    -32_768,
    -32_769,
    -(2 ** 31),
    -(2 ** 31) - 1,
    -(2 ** 53) + 1,
  ];
  const values: unknown[] = [...ints];
  for (const n of lengths) {
    values.push(
      "a".repeat(n),
      "ж".repeat(n),
      "\u{1F600}".repeat(n >> 1),
      new Uint8Array(n),
      new Array(Math.min(n, 70_000)).fill(1),
      Object.fromEntries(Array.from({ length: Math.min(n, 70_000) }, (_, i) => [`k${i}`, i])),
      new ExtData(5, new Uint8Array(n)),
    );
  }
  values.push(new Float32Array([1.5, 2]), new Date(0), new Date(-1), new Date(2 ** 40));
  for (const v of values) {
    const want = encode(v);
    assert.deepEqual(enc.encode(v), want);
    assert.deepEqual(dec.decode(want), decode(want));
  }
  // Inputs the library's encoder never writes: float 32, wider headers than needed.
  const foreign = [
    [0xca, 0x3f, 0xc0, 0x00, 0x00],
    [0xd9, 0x01, 0x61],
    [0xda, 0x00, 0x01, 0x61],
    [0xdb, 0x00, 0x00, 0x00, 0x01, 0x61],
    [0xdc, 0x00, 0x01, 0x01],
    [0xdd, 0x00, 0x00, 0x00, 0x01, 0x01],
    [0xde, 0x00, 0x01, 0xa1, 0x61, 0x01],
    [0xdf, 0x00, 0x00, 0x00, 0x01, 0xa1, 0x61, 0x01],
    [0xcf, 0, 0, 0, 0, 0, 0, 0, 1],
    [0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    [0xd0, 0x05],
    [0x81, 0x01, 0xa1, 0x78], // a number key
    [0xc7, 0x00, 0x05], // ext 8 of no bytes
  ].map((b) => new Uint8Array(b));
  for (const b of foreign) assert.deepEqual(dec.decode(b), decode(b), `${b}`);
});

Deno.test("msgpack: refuses what the library refuses", () => {
  const bad = [
    [], // nothing
    [0xc1], // never used
    [0xa2, 0x61], // truncated string
    [0x92, 0x01], // truncated array
    [0xcd, 0x01], // truncated uint 16
    [0x01, 0x02], // extra byte
    [0x81, 0x90, 0x01], // array as a map key
    [0x81, 0xc0, 0x01], // nil as a map key
    [0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0x01],
    [0xdd, 0xff, 0xff, 0xff, 0xff], // array of 2^32 - 1 elements in 5 bytes
  ].map((b) => new Uint8Array(b));
  for (const b of bad) {
    assert.throws(() => decode(b), `the library refuses ${b}`);
    assert.throws(
      () => dec.decode(b),
      (e) => e instanceof DecodeError || e instanceof RangeError,
      `${b}`,
    );
  }
  for (const v of [() => 1, Symbol("s"), 1n]) {
    assert.throws(() => encode(v));
    assert.throws(() => enc.encode(v), /Unrecognized object/);
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => enc.encode(cyclic), /Too deep objects in depth 101/);
  // The encoder stays usable after a failure.
  assert.deepEqual(enc.encode({ a: [1] }), encode({ a: [1] }));
});

Deno.test("msgpack: bin and extension data are views of the input unless copied", () => {
  const input = encode({ b: new Uint8Array([1, 2, 3]), e: new ExtData(7, new Uint8Array([9])) });
  const copies: Uint8Array[] = [];
  const copied = dec.decode(input, (v) => {
    copies.push(v);
    return v.slice();
  }) as { b: Uint8Array; e: ExtData };
  const viewed = dec.decode(input) as { b: Uint8Array; e: ExtData };
  assert.equal(copies.length, 2);
  input.fill(0xee);
  assert.deepEqual(copied.b, new Uint8Array([1, 2, 3]));
  assert.deepEqual(copied.e.data, new Uint8Array([9]));
  assert.deepEqual(viewed.b, new Uint8Array([0xee, 0xee, 0xee]), "a view sees the input change");
});

Deno.test("msgpack: ASCII strings on the fast paths match the library, and one other character anywhere falls back", () => {
  // Encoding loops over ASCII up to 32 characters; decoding slices ASCII up to 96 bytes.
  const ascii = Array.from({ length: 300 }, (_, i) => String.fromCharCode(i % 128)).join("");
  for (const n of [15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 95, 96, 97, 255, 256, 257]) {
    const s = ascii.slice(0, n);
    const mid = n >> 1;
    for (
      const v of [
        s,
        "é" + s.slice(1),
        s.slice(0, -1) + "é",
        s.slice(0, mid) + "\u{1F600}" + s.slice(mid),
      ]
    ) {
      const want = encode(v);
      assert.deepEqual(enc.encode(v), want, `encode of ${n}`);
      assert.equal(dec.decode(want), v, `decode of ${n}`);
    }
  }
});

Deno.test("msgpack: invalid UTF-8 is U+FFFD and a leading U+FEFF is kept at every length", () => {
  for (const n of [1, 5, 16, 17, 40, 300]) {
    const body = new Uint8Array(n).fill(0x61);
    body[0] = 0xff;
    const header = n < 32 ? [0xa0 + n] : n < 256 ? [0xd9, n] : [0xda, n >> 8, n & 0xff];
    const got = dec.decode(new Uint8Array([...header, ...body])) as string;
    assert.equal(got, "\uFFFD" + "a".repeat(n - 1));
    body[0] = 0x61;
    body[n - 1] = 0xff; // after an ASCII run
    assert.equal(dec.decode(new Uint8Array([...header, ...body])), "a".repeat(n - 1) + "\uFFFD");
    const bom = "\uFEFF" + "b".repeat(n);
    assert.equal(dec.decode(enc.encode(bom)), bom);
  }
  // A lone surrogate cannot be UTF-8: it goes out as U+FFFD.
  assert.equal(dec.decode(enc.encode("a\uD800b")), "a\uFFFDb");
  assert.equal(dec.decode(enc.encode("x".repeat(20) + "\uDC00")), "x".repeat(20) + "\uFFFD");
});

Deno.test("msgpack: nesting is bounded when decoding, and deeper payload limits use the library", () => {
  const nested = (depth: number) => new Uint8Array([...new Array(depth).fill(0x91), 0x01]);
  assert.deepEqual(dec.decode(nested(MAX_DECODE_DEPTH)), decode(nested(MAX_DECODE_DEPTH)));
  assert.throws(() => dec.decode(nested(MAX_DECODE_DEPTH + 1)), /nesting deeper than/);
  const deep = new PayloadCodec(new PayloadLimits({ maxPayloadDepth: 5000 }));
  let v = deep.decode(0, nested(3000));
  for (let i = 0; i < 3000; i++) v = (v as unknown[])[0];
  assert.equal(v, 1);
  const shallow = new PayloadCodec();
  assert.throws(() => shallow.decode(0, nested(3000)), (e) => RpcError.is(e, "invalid_argument"));
});

Deno.test("msgpack: an encode that re-enters the same encoder (a getter) gets the library's bytes", () => {
  const inner = { x: "inner" };
  const outer = {
    get a() {
      return enc.encode(inner).length;
    },
    b: "after",
  };
  assert.deepEqual(enc.encode(outer), encode({ a: encode(inner).length, b: "after" }));
});

Deno.test("msgpack: encodeAt writes the library's bytes in place, or spills them whole at any limit", () => {
  const target = new Uint8Array(4096);
  fc.assert(
    fc.property(value, fc.integer({ min: 0, max: 64 }), fc.nat(600), (v, at, room) => {
      const want = encode(v);
      target.fill(0xee);
      // Somewhere inside the target, at an offset; the limit anywhere from no room to plenty.
      const end = enc.encodeAt(v, target, at, at + room);
      if (end >= 0) {
        assert.ok(end - at <= room && want.length <= room);
        assert.deepEqual(target.subarray(at, end), want);
      } else {
        assert.deepEqual(enc.spilled(), want);
      }
      assert.ok(target.subarray(0, at).every((b) => b === 0xee), "nothing written before `at`");
      // The shared buffer is whole again afterwards.
      assert.deepEqual(enc.encodeShared(v), want);
    }),
    { numRuns: 3000 },
  );
  // A string that needs more than the room (in its ASCII and its encodeInto paths) spills.
  for (const s of ["a".repeat(31), "a".repeat(200), "é".repeat(100)]) {
    assert.equal(enc.encodeAt(s, target, 10, 20), -1);
    assert.deepEqual(enc.spilled(), encode(s));
    const end = enc.encodeAt(s, target, 10, 4096);
    assert.deepEqual(target.subarray(10, end), encode(s));
  }
});

Deno.test("msgpack: encodeAt in an encode that re-enters the encoder, and after a failed encode", () => {
  const target = new Uint8Array(256);
  const inner = { x: "inner" };
  const outer = {
    get a() {
      // Re-entered while encoding in place: the nested encode spills to a fresh encoder.
      const t = new Uint8Array(64);
      const end = enc.encodeAt(inner, t, 0, 64);
      return end < 0 ? enc.spilled().length : end;
    },
    b: "after",
  };
  const end = enc.encodeAt(outer, target, 5, 256);
  assert.deepEqual(target.subarray(5, end), encode({ a: encode(inner).length, b: "after" }));
  assert.throws(() => enc.encodeAt({ f: () => 1 }, target, 0, 256));
  const again = enc.encodeAt({ ok: 1 }, target, 0, 256);
  assert.deepEqual(target.subarray(0, again), encode({ ok: 1 }));
});

Deno.test("payload codec: decodeAt inside a larger buffer gives decode's value, or its error, for any bytes", () => {
  const codec = new PayloadCodec();
  const junk = fc.uint8Array({ maxLength: 12 });
  const outcome = (f: () => unknown): { value?: unknown; error?: string } => {
    try {
      return { value: f() };
    } catch (e) {
      assert.ok(RpcError.is(e, "invalid_argument"), String(e));
      return { error: (e as Error).message };
    }
  };
  const same = (bytes: Uint8Array, pre: Uint8Array, post: Uint8Array) => {
    const buf = new Uint8Array(pre.length + bytes.length + post.length);
    buf.set(pre);
    buf.set(bytes, pre.length);
    buf.set(post, pre.length + bytes.length);
    const start = pre.length, end = start + bytes.length;
    // The same messages too: offsets counted from the payload's start, not the buffer's.
    assert.deepEqual(
      outcome(() => codec.decodeAt(0, buf, start, end)),
      outcome(() => codec.decode(0, bytes.slice())),
    );
    // The decoder alone (no limits checked first) stops at the range's end as at the input's.
    const raw = (f: () => unknown) => {
      try {
        return { value: f() };
      } catch (e) {
        return { error: `${(e as Error).name}: ${(e as Error).message}` };
      }
    };
    assert.deepEqual(
      raw(() => dec.decode(buf, undefined, start, end)),
      raw(() => dec.decode(bytes)),
    );
  };
  fc.assert(fc.property(value, junk, junk, (v, pre, post) => same(encode(v), pre, post)), {
    numRuns: 2000,
  });
  // Arbitrary bytes: truncated, trailing, unknown types, bombs — refused alike.
  fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), junk, junk, same), { numRuns: 3000 });
  // Raw payloads come back as copies of the range.
  const buf = new Uint8Array([9, 1, 2, 3, 9]);
  assert.deepEqual(codec.decodeAt(1, buf, 1, 4), new Uint8Array([1, 2, 3]));
});
