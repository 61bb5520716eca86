import assert from "node:assert/strict";
import { RpcError } from "../mod.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";

Deno.test("five nodes in one process form a cluster and route callWorker by tag", async () => {
  const nodes = await startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "w1", tags: { role: "worker", zone: "eu-1" } },
    { id: "w2", tags: { role: "worker", zone: "eu-1" } },
    { id: "w3", tags: { role: "worker", zone: "us-1" } },
    { id: "w4", tags: { role: "worker", zone: "us-1", gpu: "a100" } },
  ]);
  try {
    const director = nodes[0];
    for (const n of nodes) {
      assert.deepEqual(n.nodes.nodes().map((m) => m.id), ["director", "w1", "w2", "w3", "w4"]);
    }
    assert.equal(director.registry.workers("role=worker").length, 4);
    // 40 calls at once: least connections spreads them over every worker (calls made one at a
    // time would stay on one worker for a streak of up to 1023).
    const rs = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) =>
          director.client.callWorker<{ worker: string; echo: number }>("echo", i, {
            filter: "role=worker",
            timeoutMs: 5000,
          }),
      ),
    );
    assert.deepEqual(rs.map((r) => r.echo), Array.from({ length: 40 }, (_, i) => i));
    assert.deepEqual([...new Set(rs.map((r) => r.worker))].sort(), ["w1", "w2", "w3", "w4"]);
    for (let i = 0; i < 20; i++) {
      const r = await director.client.callWorker<{ worker: string }>("echo", i, {
        filter: "zone=eu-1",
      });
      assert.ok(["w1", "w2"].includes(r.worker), r.worker);
      const g = await director.client.callWorker<{ worker: string }>("echo", i, { filter: "gpu" });
      assert.equal(g.worker, "w4");
    }
    await assert.rejects(
      director.client.callWorker("echo", 1, { filter: "zone=ap-1" }),
      (e) => RpcError.is(e, "unavailable") && e.message.includes('"zone=ap-1"'),
    );
    await assert.rejects(
      director.client.callWorker("echo", 1, { filter: "zone in (ap-1" }),
      (e) => RpcError.is(e, "invalid_argument") && e.message.includes("position 13"),
    );
    const all = await director.client.callAll<{ worker: string }>("echo", "hi", {
      filter: "role=worker",
    });
    assert.deepEqual(all.map((r) => r.ok && r.value.worker), ["w1", "w2", "w3", "w4"]);
    assert.ok(director.client.stats().connections >= 4);
  } finally {
    await stopAll(nodes);
  }
});
