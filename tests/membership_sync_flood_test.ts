/**
 * Issue 9 item 4: one unauthenticated push-pull with 100,000 member records must not flood the
 * cluster. Syncs over `maxSyncRecords` are refused whole, the member table is capped at
 * `maxMembers`, inserts are bulk (one sort, not a splice per id), all counted in `stats()`.
 */
import assert from "node:assert/strict";
import { ClusterMembership, type ClusterMembershipOptions } from "../mod.ts";
import {
  ByteWriter,
  type PushPullRecord,
  writeHeader,
  writePushPull,
} from "../src/membership/codec.ts";
import { waitFor } from "./_support/wait.ts";

function sync(records: number): Uint8Array {
  const recs: PushPullRecord[] = [];
  for (let i = 0; i < records; i++) {
    recs.push({
      node: `phantom-${i}`,
      gossipAddr: `127.0.0.1:${1 + (i % 60000)}`,
      rpcAddr: "",
      incarnation: 1,
      state: "alive",
      tags: {},
    });
  }
  const w = new ByteWriter(records * 40 + 64);
  writeHeader(w, new Uint8Array(0), 0);
  writePushPull(w, { type: "push-pull", join: true, records: recs });
  return w.toBytes();
}

/** Sends one raw request on the gossip TCP channel; resolves with the reply status byte. */
async function rawRequest(addr: string, payload: Uint8Array): Promise<number> {
  const [hostname, port] = addr.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const out = new Uint8Array(4 + payload.length);
    new DataView(out.buffer).setUint32(0, payload.length);
    out.set(payload, 4);
    let off = 0;
    while (off < out.length) off += await conn.write(out.subarray(off));
    const head = new Uint8Array(1);
    const n = await conn.read(head);
    return n === 1 ? head[0] : -1;
  } finally {
    conn.close();
  }
}

async function pair(opts: ClusterMembershipOptions) {
  const a = new ClusterMembership({ id: "target", profile: "LOCAL", ...opts });
  await a.start();
  const b = new ClusterMembership({ id: "witness", profile: "LOCAL" });
  await b.join([a.localAddr]);
  await waitFor(
    () => a.members().length === 2 && b.members().length === 2,
    "the target and the witness to see each other",
    { timeoutMs: 5000 },
  );
  return { a, b };
}

Deno.test({
  name:
    "sync flood: a 100,000-record push-pull over TCP is refused whole; the node stays responsive",
  sanitizeResources: false,
  async fn() {
    const { a, b } = await pair({});
    try {
      const before = b.stats().suspicions;
      const payload = sync(100_000);
      const t0 = performance.now();
      const status = await rawRequest(a.localAddr, payload);
      const took = performance.now() - t0;
      assert.equal(status, 1, "the sync must be refused with an error reply");
      console.log(`100,000-record sync refused in ${took.toFixed(0)} ms`);
      const s = a.stats();
      assert.equal(s.droppedSyncs, 1);
      assert.ok(s.members <= 16_384, `table holds ${s.members}`);
      assert.equal(s.members, 2);
      // Still answering probes: the witness keeps it alive and never suspects it.
      const probes = b.stats().probes;
      await waitFor(() => b.stats().probes >= probes + 5, "5 more probes by the witness", {
        timeoutMs: 5000,
      });
      assert.equal(b.get("target")!.state, "alive");
      assert.equal(b.stats().suspicions, before);
    } finally {
      await b.shutdown();
      await a.shutdown();
    }
  },
});

Deno.test({
  name: "sync flood: a sync under maxSyncRecords fills the table only up to maxMembers, in bulk",
  sanitizeResources: false,
  async fn() {
    const { a, b } = await pair({ maxMembers: 1000, maxSyncRecords: 20_000 });
    try {
      const payload = sync(20_000);
      const t0 = performance.now();
      const status = await rawRequest(a.localAddr, payload);
      const took = performance.now() - t0;
      assert.equal(status, 0);
      console.log(`20,000-record sync applied (table capped at 1000) in ${took.toFixed(0)} ms`);
      const s = a.stats();
      assert.equal(s.members, 1000);
      assert.equal(s.droppedTableFull, 20_000 - 998);
      assert.ok(took < 2000, `sync took ${took} ms`);
      const probes = b.stats().probes;
      await waitFor(() => b.stats().probes >= probes + 5, "5 more probes by the witness", {
        timeoutMs: 5000,
      });
      assert.notEqual(b.get("target")!.state, "dead");
    } finally {
      await b.shutdown();
      await a.shutdown();
    }
  },
});

Deno.test({
  name: "sync flood: 16,384 new members in one sync apply in bulk, well under a second",
  sanitizeResources: false,
  async fn() {
    const a = new ClusterMembership({ id: "target", profile: "LOCAL" });
    await a.start();
    try {
      const payload = sync(16_383);
      const t0 = performance.now();
      assert.equal(await rawRequest(a.localAddr, payload), 0);
      const took = performance.now() - t0;
      console.log(`16,383-record sync applied in ${took.toFixed(0)} ms`);
      assert.equal(a.stats().members, 16_384);
      assert.ok(took < 1500, `sync took ${took} ms`);
    } finally {
      await a.shutdown();
    }
  },
});
