/**
 * The frame reader's large-frame path (src/rpc/reader.ts): a frame too large to keep the buffer
 * for is read into a buffer of its own and handed over with the frame, so that neither the
 * reader nor the codec copies it; smaller frames stay views into the reused buffer.
 */
import assert from "node:assert/strict";
import { ByteBudget } from "../src/rpc/budget.ts";
import { PayloadCodec } from "../src/rpc/codec.ts";
import { F } from "../src/rpc/frames.ts";
import { frameBody, FrameReader } from "../src/rpc/reader.ts";
import { FrameWriter } from "../src/rpc/writer.ts";
import { concatBytes, frame } from "./_support/rpc_helpers.ts";

const T_RESPONSE = 2;

/** A byte stream delivering `bytes` in pieces of `piece` bytes. */
function pieces(bytes: Uint8Array, piece: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    type: "bytes",
    pull(ctrl) {
      if (at < bytes.length) {
        ctrl.enqueue(bytes.slice(at, at + piece));
        at += piece;
        return;
      }
      ctrl.close();
      ctrl.byobRequest?.respond(0);
    },
  });
}

Deno.test("rpc reader: a frame beyond 4 times the base buffer is handed over, smaller ones are views", async () => {
  const base = 1024, budgetBytes = 64 * 1024;
  const bodies = [
    new Uint8Array(20_000).fill(1), // > 4 × base: its own buffer, handed over
    new Uint8Array(100).fill(2),
    new Uint8Array(3000).fill(3), // grows the buffer, but not past 4 × base: a view
    new Uint8Array(30_000).fill(4),
  ];
  const bytes = concatBytes(bodies.map((b, i) => frame(T_RESPONSE, 0, i + 1, b)));
  const budget = new ByteBudget(budgetBytes);
  const reader = new FrameReader(pieces(bytes, 1500), budgetBytes, budget, base);
  const seen: { id: number; owned: boolean; body: Uint8Array }[] = [];
  await reader.run((_type, _flags, id, buf, start, end, owned) => {
    const body = frameBody(buf, start, end);
    seen.push({ id, owned, body: owned ? body : body.slice() });
    if (owned) assert.equal(budget.free, budgetBytes, "handed over: no longer charged");
  });
  reader.release();
  assert.deepEqual(seen.map((s) => [s.id, s.owned]), [[1, true], [2, false], [3, false], [
    4,
    true,
  ]]);
  // The handed-over bodies were kept without a copy: later reads did not write into them.
  for (const s of seen) assert.deepEqual(s.body, bodies[s.id - 1]);
  assert.equal(budget.free, budgetBytes);
});

Deno.test("rpc reader: next() passes a handed-over body on as it is, and copies views", async () => {
  const big = new Uint8Array(50_000).map((_, i) => i & 0xff);
  const bytes = concatBytes([
    frame(T_RESPONSE, 0, 1, big),
    frame(T_RESPONSE, 0, 2, new Uint8Array(5)),
  ]);
  const reader = new FrameReader(pieces(bytes, 4000), 1 << 20, undefined, 1024);
  const first = await reader.next();
  const second = await reader.next();
  assert.equal(await reader.next(), null);
  assert.deepEqual(first?.body, big);
  // The frame's own buffer: the body starts after the 10 header bytes, nothing follows it.
  assert.equal(first!.body.byteOffset, 10);
  assert.equal(first!.body.buffer.byteLength, 10 + big.length);
  assert.deepEqual(second?.body, new Uint8Array(5));
});

Deno.test("rpc codec: owned bytes are decoded without a copy, others are copied", () => {
  const codec = new PayloadCodec();
  const bytes = new Uint8Array([1, 2, 3]);
  assert.equal(codec.decode(F.RAW, bytes, true), bytes);
  const copied = codec.decode(F.RAW, bytes) as Uint8Array;
  assert.notEqual(copied, bytes);
  assert.deepEqual(copied, bytes);
  const encoded = codec.encode({ bin: new Uint8Array(2000).fill(7) }).slice();
  const kept = codec.decode(0, encoded, true) as { bin: Uint8Array };
  assert.equal(kept.bin.buffer, encoded.buffer, "bin values are views into the owned input");
  const fresh = codec.decode(0, encoded) as { bin: Uint8Array };
  assert.notEqual(fresh.bin.buffer, encoded.buffer);
  assert.deepEqual(fresh.bin, kept.bin);
  assert.equal(codec.keep(F.RAW, bytes, true).bytes, bytes);
  assert.notEqual(codec.keep(F.RAW, bytes).bytes, bytes);
});

/**
 * A connection (`ByteConn`) whose reads return `piece` bytes at most and whose writes take 3
 * bytes and 5000 in turn.
 */
class PieceConn {
  written: number[] = [];
  writes = 0;
  closed = false;
  #in: Uint8Array;
  #at = 0;
  constructor(input: Uint8Array, readonly piece: number) {
    this.#in = input;
  }
  read(p: Uint8Array): Promise<number | null> {
    if (this.#at >= this.#in.length) return Promise.resolve(null);
    const n = Math.min(this.piece, p.length, this.#in.length - this.#at);
    p.set(this.#in.subarray(this.#at, this.#at + n));
    this.#at += n;
    return Promise.resolve(n);
  }
  async write(p: Uint8Array): Promise<number> {
    await new Promise((r) => setTimeout(r, 1)); // a write that takes a while
    const n = Math.min(this.writes % 2 === 0 ? 3 : 5000, p.length);
    this.written.push(...p.subarray(0, n));
    this.writes++;
    return n;
  }
  close(): void {
    this.closed = true;
  }
}

Deno.test("rpc reader and writer: a connection read and written directly (TCP lane), in pieces and partial writes", async () => {
  const bodies = [100, 0, 7, 70_000, 5].map((n, i) => new Uint8Array(n).fill(i + 1));
  const bytes = concatBytes(bodies.map((b, i) => frame(T_RESPONSE, 0, i + 1, b)));
  const reader = new FrameReader(new PieceConn(bytes, 999), 1 << 20, undefined, 1024);
  const seen: [number, Uint8Array][] = [];
  await reader.run((_t, _f, id, buf, start, end, owned) =>
    seen.push([id, owned ? frameBody(buf, start, end) : buf.slice(start, end)])
  );
  assert.deepEqual(seen, bodies.map((b, i) => [i + 1, b]));

  const out = new PieceConn(new Uint8Array(0), 1);
  const writer = new FrameWriter(out);
  for (let i = 0; i < 5; i++) writer.frame(T_RESPONSE, 0, i + 1, undefined, bodies[i], true);
  await writer.ready(); // this turn's frames handed over; resolves once they are written
  writer.frame(T_RESPONSE, 0, 9, undefined, new Uint8Array([42]), true); // a later batch
  await writer.close(); // queued bytes first, then the connection closes
  assert.equal(out.closed, true);
  const want = concatBytes([
    ...bodies.map((b, i) => frame(T_RESPONSE, 0, i + 1, b)),
    frame(T_RESPONSE, 0, 9, new Uint8Array([42])),
  ]);
  assert.deepEqual(new Uint8Array(out.written), want);
  assert.ok(out.writes >= 2 * Math.floor(want.length / 5003), "every partial write was continued");
});

/** A connection (`ByteConn`) that takes every write whole and keeps each one. */
class RecordingConn {
  writes: Uint8Array[] = [];
  read(): Promise<number | null> {
    return Promise.resolve(null);
  }
  write(p: Uint8Array): Promise<number> {
    this.writes.push(p.slice());
    return Promise.resolve(p.length);
  }
  close(): void {}
}

Deno.test("rpc writer: frames queued on several connections in one turn go out as one write per connection, turn after turn", async () => {
  const conns = [new RecordingConn(), new RecordingConn(), new RecordingConn()];
  const writers = conns.map((c) => new FrameWriter(c));
  const body = new Uint8Array([7, 7, 7]);
  const turn = () => new Promise((r) => setTimeout(r, 5));
  for (let round = 0; round < 3; round++) {
    // Interleaved, as a caller spreading calls does.
    for (let i = 0; i < 10; i++) {
      writers[i % 3].frame(T_RESPONSE, 0, round * 100 + i, undefined, body);
    }
    assert.ok(writers.every((w) => w.batching), "nothing is written before the turn ends");
    await turn();
    conns.forEach((c, k) => {
      const ids = Array.from({ length: 10 }, (_, i) => i).filter((i) => i % 3 === k);
      assert.equal(c.writes.length, round + 1, `connection ${k}: one write per turn`);
      assert.deepEqual(
        c.writes[round],
        concatBytes(ids.map((i) => frame(T_RESPONSE, 0, round * 100 + i, body))),
      );
    });
  }
  // A writer flushed early by ready() and written to again in the same turn still gets its
  // later frames out with the others.
  writers[0].frame(T_RESPONSE, 0, 1, undefined, body);
  writers[1].frame(T_RESPONSE, 0, 2, undefined, body);
  await Promise.resolve(writers[0].ready());
  writers[0].frame(T_RESPONSE, 0, 3, undefined, body);
  await turn();
  assert.deepEqual(conns[0].writes.slice(3), [
    frame(T_RESPONSE, 0, 1, body),
    frame(T_RESPONSE, 0, 3, body),
  ]);
  assert.deepEqual(conns[1].writes.slice(3), [frame(T_RESPONSE, 0, 2, body)]);
  for (const w of writers) await w.close();
});

Deno.test("rpc writer: a frame written in place is the frame frame() writes; one opened and not closed is not sent", async () => {
  const conn = new RecordingConn();
  const w = new FrameWriter(conn);
  const head = new Uint8Array([4, 101, 99, 104, 111]);
  const payload = new Uint8Array([1, 2, 3, 4, 5, 6, 7]);
  let at = w.openFrame(T_RESPONSE, 3, 41, head, 16);
  w.buffer.set(payload, at);
  w.closeFrame(at + payload.length);
  at = w.openFrame(T_RESPONSE, 0, 42, undefined, 16); // abandoned: e.g. the value did not fit
  w.buffer.fill(0xff, at, at + 10);
  w.frame(T_RESPONSE, 0, 43, undefined, payload);
  at = w.openFrame(T_RESPONSE, 0, 44, undefined, 16);
  w.closeFrame(at); // an empty payload
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(
    concatBytes(conn.writes),
    concatBytes([
      frame(T_RESPONSE, 3, 41, concatBytes([head, payload])),
      frame(T_RESPONSE, 0, 43, payload),
      frame(T_RESPONSE, 0, 44, new Uint8Array(0)),
    ]),
  );
  await w.close();
  assert.equal(new FrameWriter(conn).openFrame(T_RESPONSE, 0, 1, undefined, 16) >= 0, true);
  const closed = new FrameWriter(conn);
  await closed.close();
  assert.equal(
    closed.openFrame(T_RESPONSE, 0, 1, undefined, 16),
    -1,
    "a closed writer takes no frame",
  );
});
