/**
 * Mutation of valid messages for the fuzz targets (tests/fuzz_*_test.ts): byte flips, random
 * bytes written, inserted or deleted, truncation, duplicated ranges, and large length-like
 * values planted, so that inputs stay close to what the parser expects and reach deep paths.
 * `RPCNET_FUZZ_RUNS` sets the inputs per target (default 100,000; `deno task fuzz` runs every
 * tests/fuzz_*_test.ts with 1,000,000).
 *
 * @module
 */
import fc from "fast-check";

/** Inputs per fuzz target: `RPCNET_FUZZ_RUNS`, default 100,000. */
export const FUZZ_RUNS = fuzzRuns(Deno.env.get("RPCNET_FUZZ_RUNS"));

function fuzzRuns(v: string | undefined): number {
  if (v === undefined || v === "") return 100_000;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`RPCNET_FUZZ_RUNS must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** One mutation: kind, position (taken modulo the length) and a byte. */
export type Mutation = [kind: number, pos: number, byte: number];

/** Up to `max` mutations. */
export function mutations(max = 4): fc.Arbitrary<Mutation[]> {
  return fc.array(
    fc.tuple(fc.integer({ min: 0, max: 6 }), fc.nat(), fc.integer({ min: 0, max: 255 })),
    { maxLength: max },
  );
}

/** Applies `ms` to a copy of `input`. */
export function mutate(input: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = input.slice();
  const splice = (at: number, del: number, ins: ArrayLike<number>) => {
    const out = new Uint8Array(b.length - del + ins.length);
    out.set(b.subarray(0, at));
    out.set(ins, at);
    out.set(b.subarray(at + del), at + ins.length);
    b = out;
  };
  for (const [kind, p, v] of ms) {
    const i = b.length === 0 ? 0 : p % b.length;
    switch (kind) {
      case 0: // flip a bit
        if (b.length) b[i] ^= 1 << (v & 7);
        break;
      case 1: // overwrite
        if (b.length) b[i] = v;
        break;
      case 2: // insert
        splice(i, 0, [v]);
        break;
      case 3: // delete
        if (b.length) splice(i, 1, []);
        break;
      case 4: // truncate
        b = b.slice(0, i);
        break;
      case 5: // duplicate a short range
        splice(i, 0, b.slice(i, i + (v & 15) + 1));
        break;
      case 6: // plant a large big-endian u32 (a length, a count)
        splice(i, 0, [0xff - (v & 0x0f), v, 0xff, v]);
        break;
    }
  }
  return b;
}

/**
 * Encodings of `values`, mutated, and in about one of four a `hostile` byte run (e.g. a header
 * claiming far more than follows) spliced in at a random place.
 */
export function mutatedEncodings<T>(
  values: fc.Arbitrary<T>,
  encode: (v: T) => Uint8Array,
  hostile: fc.Arbitrary<readonly number[]>,
): fc.Arbitrary<Uint8Array> {
  return fc.tuple(values, mutations(), fc.option(fc.tuple(hostile, fc.nat()), { freq: 3 })).map(
    ([v, ms, plant]) => {
      const bytes = mutate(encode(v), ms);
      if (!plant) return bytes;
      const [h, at] = plant;
      const i = bytes.length ? at % bytes.length : 0;
      return new Uint8Array([...bytes.subarray(0, i), ...h, ...bytes.subarray(i)]);
    },
  );
}

/**
 * Runs `decode` and checks that it took under `boundMs`: a hang or a super-linear input fails.
 * A slow first run is repeated once, and only a repeated slowness fails: a garbage-collection
 * pause or a preemption on a busy machine does not repeat, a slow input does (the decoders are
 * deterministic).
 */
export function withinTime<T>(decode: () => T, boundMs = 50): T {
  let started = performance.now();
  let out = decode();
  let took = performance.now() - started;
  if (took >= boundMs) {
    started = performance.now();
    out = decode();
    took = performance.now() - started;
  }
  if (took >= boundMs) throw new Error(`decode took ${took} ms, twice (bound ${boundMs} ms)`);
  return out;
}
