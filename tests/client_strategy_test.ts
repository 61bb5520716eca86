import assert from "node:assert/strict";
import { ClusterClient, type Node, type StrategyName, type Tags, WorkerRegistry } from "../mod.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";

/** Runs `total` calls of `echo` with `concurrency` in flight; returns calls per worker id. */
async function spread(
  nodes: Node[],
  strategy: StrategyName,
  total: number,
  concurrency: number,
  options: { key?: (i: number) => string; tieStreak?: number } = {},
): Promise<Map<string, number>> {
  const registry = new WorkerRegistry(nodes[0].membership, {
    strategy,
    seed: 42,
    tieStreak: options.tieStreak,
  });
  const client = new ClusterClient(registry);
  const counts = new Map<string, number>();
  let next = 0;
  try {
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const r = await client.callWorker<{ worker: string }>("echo", i, {
          filter: "role=worker",
          timeoutMs: 10_000,
          key: options.key?.(i),
        });
        counts.set(r.worker, (counts.get(r.worker) ?? 0) + 1);
      }
    }));
    // The client's own per-worker accounting agrees with what the workers answered.
    for (const [id, n] of counts) assert.equal(client.stats().perWorker[id].calls, n);
    return counts;
  } finally {
    await client.close();
    registry.close();
  }
}

function workers(specs: [string, number, Tags?][]) {
  return [
    { id: "director", tags: { role: "director" } },
    ...specs.map(([id, delayMs, tags]) => ({ id, delayMs, tags: { role: "worker", ...tags } })),
  ];
}

Deno.test("round_robin, random and least_connections spread calls over every worker", async () => {
  const nodes = await startCluster(workers([["w1", 0], ["w2", 0], ["w3", 0]]));
  try {
    const rr = await spread(nodes, "round_robin", 300, 1);
    assert.deepEqual([...rr.entries()].sort(), [["w1", 100], ["w2", 100], ["w3", 100]]);
    const random = await spread(nodes, "random", 600, 4);
    for (const id of ["w1", "w2", "w3"]) {
      const n = random.get(id) ?? 0;
      assert.ok(n > 120 && n < 280, `random gave ${id} ${n} of 600`);
    }
    // One call in flight at a time: every worker is always idle, so every pick is a tie. A streak
    // of 16 (the default, 1023, is covered by the balancer's tests) rotates 300 calls over all.
    const lc = await spread(nodes, "least_connections", 300, 1, { tieStreak: 16 });
    for (const id of ["w1", "w2", "w3"]) assert.ok((lc.get(id) ?? 0) > 40, `lc: ${id}`);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("weighted_random follows the weight tag and consistent_hash keeps a key on one worker", async () => {
  const nodes = await startCluster(
    workers([["w1", 0, { weight: "1" }], ["w2", 0, { weight: "1" }], ["w3", 0, { weight: "4" }]]),
  );
  try {
    const weighted = await spread(nodes, "weighted_random", 600, 4);
    const w3 = weighted.get("w3") ?? 0;
    assert.ok(w3 > 600 * 0.5 && w3 < 600 * 0.85, `weight 4 of 6 got ${w3} of 600`);
    const byKey = new Map<string, Set<string>>();
    const registry = new WorkerRegistry(nodes[0].membership, { strategy: "consistent_hash" });
    const client = new ClusterClient(registry);
    try {
      for (let i = 0; i < 200; i++) {
        const key = `user-${i % 20}`;
        const r = await client.callWorker<{ worker: string }>("echo", i, {
          filter: "role=worker",
          key,
        });
        if (!byKey.has(key)) byKey.set(key, new Set());
        byKey.get(key)!.add(r.worker);
      }
    } finally {
      await client.close();
      registry.close();
    }
    for (const [key, ws] of byKey) assert.equal(ws.size, 1, `${key} went to ${[...ws]}`);
    const owners = new Set([...byKey.values()].map((s) => [...s][0]));
    assert.ok(owners.size >= 2, "20 keys should spread over several workers");
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("least_connections gives a slow worker few calls when many are in flight", async () => {
  const nodes = await startCluster(workers([["w1", 2], ["w2", 2], ["slow", 40]]));
  try {
    const counts = await spread(nodes, "least_connections", 600, 12);
    const slow = counts.get("slow") ?? 0;
    assert.ok(slow < 600 * 0.2, `slow worker got ${slow} of 600`);
    assert.ok((counts.get("w1") ?? 0) > slow && (counts.get("w2") ?? 0) > slow);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("p2c_peak_ewma gives a 10x slower worker at most 20% of calls", async () => {
  const nodes = await startCluster(workers([["w1", 4], ["w2", 4], ["slow", 40]]));
  try {
    const counts = await spread(nodes, "p2c_peak_ewma", 600, 8);
    const slow = counts.get("slow") ?? 0;
    assert.ok(slow <= 600 * 0.2, `10x slower worker got ${slow} of 600`);
    assert.ok(slow > 0, "the slow worker is still probed now and then");
  } finally {
    await stopAll(nodes);
  }
});
