/**
 * Bench section "codec": MessagePack encode + decode of typical payloads with `@msgpack/msgpack`
 * and with the payload codec's own encoder and decoder (`src/rpc/msgpack.ts`), each as the
 * payload codec would use it (shared encode buffer; for ours, decoding straight from the input),
 * in interleaved rounds in one process. The figure is the per-round ratio library ÷ ours.
 *
 * @module
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { MsgpackDecoder, MsgpackEncoder } from "../src/rpc/msgpack.ts";
import { type BenchRow, type BenchSection, median } from "./table.ts";

const ROUNDS = 7;
const CALLS = 100_000;

const VALUES: [string, unknown][] = [
  ["null", null],
  ["8-byte string", "abcdefgh"],
  ["64-byte string", "x".repeat(64)],
  ["300-byte string", "y".repeat(300)],
  ["64 characters of Cyrillic", "ж".repeat(64)],
  ["object with short string fields", {
    id: "user-12345678",
    name: "Ada Lovelace",
    email: "ada@example.com",
    tags: ["a", "b"],
    n: 42,
  }],
  ["array of 100 numbers", Array.from({ length: 100 }, (_, i) => i * 1.5)],
  ["1 KiB of bytes", new Uint8Array(1024)],
];

type Pair = { encode(v: unknown): Uint8Array; decode(b: Uint8Array): unknown };

/** ns per encode + decode of `value`. */
function time(pair: Pair, value: unknown): number {
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < CALLS; i++) {
    const bytes = pair.encode(value);
    sink += bytes.length;
    if (pair.decode(bytes) === undefined) sink++;
  }
  const ns = (performance.now() - t0) * 1e6 / CALLS;
  return sink > 0 ? ns : NaN;
}

/** Runs the section. */
export function run(): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  for (const [name, value] of VALUES) {
    const libEnc = new Encoder(), libDec = new Decoder();
    const ownEnc = new MsgpackEncoder(), ownDec = new MsgpackDecoder();
    const lib: Pair = { encode: (v) => libEnc.encodeSharedRef(v), decode: (b) => libDec.decode(b) };
    const own: Pair = { encode: (v) => ownEnc.encodeShared(v), decode: (b) => ownDec.decode(b) };
    time(lib, value); // warm-up (JIT)
    time(own, value);
    const libNs: number[] = [], ownNs: number[] = [], ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const a = time(lib, value);
      const b = time(own, value);
      libNs.push(a);
      ownNs.push(b);
      ratios.push(a / b);
    }
    rows.push({
      name: `${name}: encode + decode, library ÷ ours`,
      value: median(ratios),
      unit: "x",
      note: `${median(libNs).toFixed(0)} → ${median(ownNs).toFixed(0)} ns; ${ROUNDS} rounds of ` +
        `${CALLS} interleaved`,
    });
  }
  return Promise.resolve({
    title: "codec: MessagePack, @msgpack/msgpack and ours (one process)",
    rows,
  });
}

if (import.meta.main) {
  const { renderTable } = await import("./table.ts");
  console.log(renderTable([await run()]));
}
