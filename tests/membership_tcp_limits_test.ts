/**
 * Issue 9 item 9: the gossip TCP channel. 64 idle connections from one client must not block
 * real push-pulls and joins: a short header deadline, a per-host limit, eviction of streams that
 * have not sent their header, all counted.
 */
import assert from "node:assert/strict";
import { ClusterMembership } from "../mod.ts";
import { waitFor } from "./_support/wait.ts";

Deno.test({
  name: "gossip TCP: 64 idle connections do not block joins and push-pulls; refusals are counted",
  sanitizeResources: false,
  async fn() {
    const seed = new ClusterMembership({ id: "seed", profile: "LOCAL" });
    await seed.start();
    const port = Number(seed.localAddr.split(":")[1]);
    const idle: Deno.Conn[] = [];
    const joiners: ClusterMembership[] = [];
    try {
      for (let i = 0; i < 64; i++) {
        idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      }
      // Five real joins (each a push-pull over the same channel, from the same IP as the
      // idle connections) while the idle ones are held open.
      for (let i = 0; i < 5; i++) {
        const j = new ClusterMembership({
          id: `j${i}`,
          profile: "LOCAL",
          bootstrapTimeoutMs: 3000,
        });
        joiners.push(j);
        const t0 = Date.now();
        assert.equal(await j.join([seed.localAddr]), 1);
        assert.ok(Date.now() - t0 < 1500, `join ${i} took ${Date.now() - t0} ms`);
      }
      const s = seed.stats();
      assert.ok(s.streamsEvicted >= 56, `evicted ${s.streamsEvicted}`);
      assert.ok(s.pushPullsServed >= 5);
      // The idle connections left over are closed at the header deadline (2 s).
      await waitFor(
        () => seed.stats().streamHeaderTimeouts >= 1,
        "an idle stream closed at the header deadline",
        { timeoutMs: 5000 },
      );
      await waitFor(() => seed.members().length === 6, "the seed to see 6 members", {
        timeoutMs: 5000,
      });
    } finally {
      for (const c of idle) {
        try {
          c.close();
        } catch { /* closed by the server */ }
      }
      for (const j of joiners) await j.shutdown();
      await seed.shutdown();
    }
  },
});
