/**
 * Costs of the Deno runtime calls that the RPC hot path chooses between, in one process, rounds
 * interleaved, medians of 7: the figures behind `src/rpc/deadlines.ts` (a `setTimeout` +
 * `clearTimeout` pair against an unref + ref of a timer kept armed) and `src/rpc/msgpack.ts`
 * (ASCII strings: `TextDecoder` against a scan plus node:buffer's Latin-1 slice, `encodeInto`
 * against a JavaScript loop, by length; `src/rpc/client_conn.ts` and `server_lane.ts`: a payload
 * encoded into the shared buffer and copied into the frame batch against one encoded in place;
 * `reader.ts`: a frame's payload decoded from a view made of it against in place).
 * Not a bench section: nothing here is compared against a
 * baseline system, it only says which call is cheaper at which size on this machine.
 *
 * ```sh
 * deno run -A bench/runtime_costs.ts
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import { PayloadCodec } from "../src/rpc/codec.ts";
import { FrameWriter } from "../src/rpc/writer.ts";
import { median } from "./table.ts";

const ROUNDS = 7;
const latin1Slice = (Buffer.prototype as unknown as {
  latin1Slice: (this: Uint8Array, s: number, e: number) => string;
}).latin1Slice;
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const encoder = new TextEncoder();
const input = new Uint8Array(4096).map((_, i) => 97 + (i % 26));
const output = new Uint8Array(4096);

/** ns per call of `f`, over `n` calls. */
function nsPer(n: number, f: (i: number) => unknown): number {
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) if (f(i)) sink++;
  const ns = (performance.now() - t0) * 1e6 / n;
  return sink < 0 ? -1 : ns;
}

/** Medians of interleaved rounds of each candidate. */
function compare(n: number, candidates: Record<string, (i: number) => unknown>): string {
  const runs: Record<string, number[]> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, f] of Object.entries(candidates)) (runs[name] ??= []).push(nsPer(n, f));
  }
  return Object.entries(runs).map(([name, xs]) => `${name} ${median(xs).toFixed(0)} ns`).join(", ");
}

const timer = setTimeout(() => {}, 60_000);
console.log(
  "timer per call:",
  compare(100_000, {
    "setTimeout + clearTimeout": () => clearTimeout(setTimeout(() => {}, 30_000)),
    "unrefTimer + refTimer": () => {
      Deno.unrefTimer(timer as unknown as number);
      Deno.refTimer(timer as unknown as number);
    },
  }),
);
clearTimeout(timer);

for (const n of [17, 32, 64, 96, 128, 256]) {
  const strings = Array.from({ length: 16 }, (_, j) => String.fromCharCode(97 + j).repeat(n));
  const decode = compare(300_000, {
    TextDecoder: () => decoder.decode(new Uint8Array(input.buffer, 100, n)),
    "scan + latin1Slice": () => {
      let i = 100;
      while (i < 100 + n && input[i] < 0x80) i++;
      return latin1Slice.call(input, 100, i);
    },
  });
  const encode = compare(300_000, {
    encodeInto: (i) =>
      encoder.encodeInto(strings[i & 15], new Uint8Array(output.buffer, 2, n * 3)).written,
    "JavaScript loop": (i) => {
      const s = strings[i & 15];
      let k = 0;
      for (; k < s.length; k++) {
        const c = s.charCodeAt(k);
        if (c > 0x7f) break;
        output[2 + k] = c;
      }
      return k;
    },
  });
  console.log(`ASCII ${n} bytes: decode ${decode}; encode ${encode}`);
}

// A payload framed the general way (encoded into the shared buffer, a view of it, copied into the
// batch) against in place (encoded straight into the batch); 64 frames per turn, as a caller or
// worker writes them, so the batch is flushed and reused as in a run.
{
  const conn = {
    read: () => Promise.resolve(null),
    write: (p: Uint8Array) => Promise.resolve(p.length),
    close() {},
  };
  const writer = new FrameWriter(conn);
  const codec = new PayloadCodec();
  const head = new Uint8Array([4, 101, 99, 104, 111]);
  const copied = (v: unknown) => {
    const p = codec.encode(v);
    writer.frame(1, 0, 1, head, p, codec.owned);
  };
  const inPlace = (v: unknown) => {
    if (codec.encodeFrame(writer, 1, 0, 1, head, v, 16 * 1024) !== undefined) {
      throw new Error("did not fit");
    }
  };
  const turn = () => new Promise((r) => setImmediate(r));
  for (
    const [name, v] of [["64-byte string", "x".repeat(64)], ["small map", { id: 7, ok: true }]]
  ) {
    const runs: Record<string, number[]> = {};
    for (let r = 0; r < ROUNDS * 3; r++) {
      for (const [how, f] of [["copied", copied], ["in place", inPlace]] as const) {
        let ns = 0;
        for (let k = 0; k < 200; k++) {
          const t0 = performance.now();
          for (let i = 0; i < 64; i++) f(v);
          ns += (performance.now() - t0) * 1e6;
          await turn();
        }
        if (r >= 3) (runs[how] ??= []).push(ns / (200 * 64));
      }
    }
    console.log(
      `frame a ${name}: ${
        Object.entries(runs).map(([how, xs]) => `${how} ${median(xs).toFixed(0)} ns`).join(", ")
      }`,
    );
  }
  await writer.close();
}

// A frame's payload decoded from a view of the reader's buffer (made per frame) against decoded in
// place (`decodeAt`), as a caller decodes responses and a worker requests.
{
  const codec = new PayloadCodec();
  for (
    const [name, v] of [["64-byte string", "x".repeat(64)], ["small map", { id: 7, ok: true }]]
  ) {
    const payload = codec.encode(v).slice();
    const buf = new Uint8Array(4096);
    for (let i = 0; i < 32; i++) buf.set(payload, 16 + i * 128);
    console.log(
      `decode a ${name}: ${
        compare(300_000, {
          "view + decode": (i) => {
            const at = 16 + (i & 31) * 128;
            return codec.decode(0, new Uint8Array(buf.buffer, at, payload.length));
          },
          "in place": (i) => {
            const at = 16 + (i & 31) * 128;
            return codec.decodeAt(0, buf, at, at + payload.length);
          },
        })
      }`,
    );
  }
}
