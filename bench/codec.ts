/**
 * Bench section "codec": MessagePack encode + decode of typical payloads with the library's own
 * string code and with the payload codec's fast string paths (`src/rpc/msgpack_strings.ts`), in
 * interleaved rounds in one process; the figure is the per-round ratio library ÷ fast.
 *
 * @module
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { installFastStrings } from "../src/rpc/msgpack_strings.ts";
import { type BenchRow, type BenchSection, median } from "./table.ts";

const ROUNDS = 7;
const CALLS = 100_000;

const VALUES: [string, unknown][] = [
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
];

/** ns per encode + decode of `value`, as the payload codec does it (shared encode buffer). */
function time(enc: Encoder, dec: Decoder, value: unknown): number {
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < CALLS; i++) {
    const bytes = enc.encodeSharedRef(value);
    sink += bytes.length;
    if (dec.decode(bytes) === undefined) sink++;
  }
  const ns = (performance.now() - t0) * 1e6 / CALLS;
  return sink > 0 ? ns : NaN;
}

/** Runs the section. */
export function run(): Promise<BenchSection> {
  const rows: BenchRow[] = [];
  for (const [name, value] of VALUES) {
    const lib = { enc: new Encoder(), dec: new Decoder() };
    const fast = { enc: new Encoder(), dec: new Decoder() };
    if (!installFastStrings(fast.enc, fast.dec)) throw new Error("fast strings did not install");
    time(lib.enc, lib.dec, value); // warm-up (JIT)
    time(fast.enc, fast.dec, value);
    const libNs: number[] = [], fastNs: number[] = [], ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const a = time(lib.enc, lib.dec, value);
      const b = time(fast.enc, fast.dec, value);
      libNs.push(a);
      fastNs.push(b);
      ratios.push(a / b);
    }
    rows.push({
      name: `${name}: encode + decode, library ÷ fast strings`,
      value: median(ratios),
      unit: "x",
      note: `${median(libNs).toFixed(0)} → ${median(fastNs).toFixed(0)} ns; ${ROUNDS} rounds of ` +
        `${CALLS} interleaved`,
    });
  }
  return Promise.resolve({ title: "codec: MessagePack string paths (one process)", rows });
}

if (import.meta.main) {
  const { renderTable } = await import("./table.ts");
  console.log(renderTable([await run()]));
}
