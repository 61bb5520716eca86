/**
 * Streaming calls share the unary calls' bookkeeping (issue 11, item 3): a worker failing
 * streaming calls gets ejected by the outlier detector, and its failures are counted.
 */
import assert from "node:assert/strict";
import { RpcError } from "../mod.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";

Deno.test("a worker failing streaming calls is ejected like one failing unary calls", async () => {
  const nodes = await startCluster([
    { id: "good", tags: { role: "worker" } },
    { id: "bad", tags: { role: "worker" } },
  ], { strategy: "round_robin" });
  nodes[0].registerServerStream("ticks", async function* () {
    for (let i = 0; i < 3; i++) yield i;
  });
  nodes[1].registerServerStream("ticks", async function* () {
    yield* [];
    throw new RpcError("internal", "broken stream");
  });
  const client = nodes[0].client;
  try {
    let failures = 0;
    for (let i = 0; i < 30; i++) {
      try {
        const got: number[] = [];
        for await (
          const v of client.serverStream<number>("ticks", null, { filter: "role=worker" })
        ) {
          got.push(v);
        }
        assert.deepEqual(got, [0, 1, 2]);
      } catch (e) {
        assert.ok(RpcError.is(e, "internal"), String(e));
        failures++;
      }
    }
    const s = client.stats();
    console.log(
      `stream failures ${failures}, ejections ${s.ejections}, bad ${
        JSON.stringify(s.perWorker.bad)
      }`,
    );
    assert.ok(s.ejections >= 1, "the failing worker was ejected");
    assert.equal(s.perWorker.bad.failures, failures, "each failed stream counted against it");
    assert.equal(s.failed, failures);
    assert.ok(failures <= 6, `ejected after 5 consecutive failures, got ${failures} failures`);
    assert.equal(s.perWorker.bad.active + s.perWorker.good.active, 0);
  } finally {
    await stopAll(nodes);
  }
});
