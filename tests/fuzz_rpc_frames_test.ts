/**
 * Fuzz target: the RPC frame reader (src/rpc/reader.ts) and the request/error body parsers of
 * src/rpc/frames.ts and status.ts, fed through a BYOB byte stream in random chunkings, as QUIC
 * delivers them. Valid frame sequences come out exactly as written (bodies the reader hands over,
 * kept without a copy, stay intact while later frames are read); mutated ones only ever fail
 * with `FrameError` (which closes the connection as a protocol error), never hang, and never
 * hold more buffer than the frame limit and the byte budget allow.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ByteBudget } from "../src/rpc/budget.ts";
import { FrameError, MAX_TYPE, parseRequestHead, T } from "../src/rpc/frames.ts";
import { frameBody, FrameReader } from "../src/rpc/reader.ts";
import { parseErrorBody } from "../src/rpc/status.ts";
import { FUZZ_RUNS, mutate, mutations } from "./_support/fuzz_mutate.ts";
import { concatBytes, frame } from "./_support/rpc_helpers.ts";

const MAX_FRAME = 2048;
const BUDGET = 4096;

interface Written {
  type: number;
  flags: number;
  id: number;
  body: Uint8Array;
}

const frameArb: fc.Arbitrary<Written> = fc.record({
  type: fc.integer({ min: 1, max: MAX_TYPE }),
  flags: fc.integer({ min: 0, max: 7 }),
  id: fc.nat(),
  body: fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 64 }), weight: 3 },
    // Large bodies (cheap to generate: a length and a fill byte) cross chunk and buffer edges.
    {
      arbitrary: fc.tuple(fc.integer({ min: 500, max: MAX_FRAME - 6 }), fc.nat(255))
        .map(([n, v]) => new Uint8Array(n).fill(v)),
      weight: 1,
    },
  ),
}, { noNullPrototype: true });

function encodeAll(written: Written[]): Uint8Array {
  return concatBytes(written.map((f) => frame(f.type, f.flags, f.id, f.body)));
}

function sameFrames(got: Written[], want: Written[]): void {
  assert.equal(got.length, want.length, "frame count");
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    assert.ok(
      g.type === w.type && g.flags === w.flags && g.id === w.id &&
        g.body.length === w.body.length && g.body.every((b, k) => b === w.body[k]),
      `frame ${i} differs`,
    );
  }
}

/** A BYOB-capable byte stream delivering `bytes` in pieces cut at `cuts`. */
function byteStream(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const pieces: Uint8Array[] = [];
  let at = 0;
  for (const c of [...cuts.map((c) => c % (bytes.length + 1))].sort((a, b) => a - b)) {
    if (c > at) pieces.push(bytes.slice(at, c));
    at = Math.max(at, c);
  }
  if (at < bytes.length) pieces.push(bytes.slice(at));
  return new ReadableStream({
    type: "bytes",
    pull(ctrl) {
      const p = pieces.shift();
      if (p !== undefined) return ctrl.enqueue(p);
      ctrl.close();
      // A pending BYOB read completes (done) only once the request is answered.
      ctrl.byobRequest?.respond(0);
    },
  });
}

/** Reads every frame of `stream`; returns the frames and the error, if any. */
async function readAll(stream: ReadableStream<Uint8Array>, budget: ByteBudget, base: number) {
  const reader = new FrameReader(stream, MAX_FRAME, budget, base);
  const frames: Written[] = [];
  let oversize = 0;
  let error: unknown;
  try {
    await reader.run((type, flags, id, buf, start, end, owned) => {
      const body = frameBody(buf, start, end);
      // A handed-over body is kept as it is: later reads must not write into it.
      frames.push({ type, flags, id, body: owned ? body : body.slice() });
      if (owned) {
        assert.ok(
          body.length + 10 > 4 * base,
          "only frames beyond 4 times the base are handed over",
        );
        assert.equal(
          budget.free,
          BUDGET,
          "a handed-over buffer no longer counts against the budget",
        );
      }
      // What the server does with a frame's body: parse it, failing only with FrameError.
      // In place in the reader's buffer, as the server's lane parses it.
      if (type === T.REQUEST) parseRequestHead(buf, start, flags, undefined, end);
      if (type === T.STREAM_OPEN && body.length > 0) parseRequestHead(body, 1, flags);
      if (type === T.ERROR) parseErrorBody(body);
      assert.ok(budget.free >= 0 && budget.free <= BUDGET, `budget ${budget.free}`);
    }, (_type, _flags, _id, length) => {
      assert.ok(length > MAX_FRAME || budget.free < length, "oversize only when it is");
      oversize++;
      return true;
    });
  } catch (e) {
    error = e;
  }
  reader.release();
  assert.equal(budget.free, BUDGET, "the budget is given back");
  return { frames, oversize, error };
}

Deno.test(`fuzz rpc frames: valid frame sequences are read back exactly, in any chunking (${FUZZ_RUNS} inputs)`, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(frameArb, { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.constantFrom(16, 256, 4096),
      async (written, cuts, base) => {
        const bytes = encodeAll(written);
        const { frames, error, oversize } = await readAll(
          byteStream(bytes, cuts),
          new ByteBudget(BUDGET),
          base,
        );
        if (error !== undefined && !(error instanceof FrameError)) throw error;
        // Bodies parse or fail with FrameError; the frames themselves always come through.
        if (error === undefined) {
          assert.equal(oversize, 0);
          sameFrames(frames, written);
        } else {
          sameFrames(frames, written.slice(0, frames.length));
        }
      },
    ),
    { numRuns: FUZZ_RUNS },
  );
});

Deno.test(`fuzz rpc frames: mutated streams fail only with FrameError and release their budget (${FUZZ_RUNS} inputs)`, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(frameArb, { minLength: 1, maxLength: 4 }),
      mutations(6),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.constantFrom(16, 1024),
      async (written, ms, cuts, base) => {
        const bytes = mutate(encodeAll(written), ms);
        const { frames, error } = await readAll(
          byteStream(bytes, cuts),
          new ByteBudget(BUDGET),
          base,
        );
        if (error !== undefined && !(error instanceof FrameError)) throw error;
        for (const f of frames) assert.ok(f.body.length <= MAX_FRAME - 6);
      },
    ),
    { numRuns: FUZZ_RUNS },
  );
});
