/**
 * Per-try timeouts and hedging (issue 9, item 8): an idempotent call whose worker stopped
 * answering fails over at the per-try timeout instead of waiting (for `NodeFailed`, or forever
 * when the process is alive but its handler hangs); a hedge to
 * another worker wins against a slow one, and the retry budget bounds the hedges.
 */
import assert from "node:assert/strict";
import { ClusterClient, RpcError } from "../mod.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";

Deno.test("a worker that stops answering: idempotent calls fail over within the per-try timeout instead of waiting (no NodeFailed ever comes)", async () => {
  const perTryTimeoutMs = 800;
  const nodes = await startCluster([
    { id: "w1", tags: { role: "worker" } },
    { id: "w2", tags: { role: "worker" } },
    { id: "stuck", tags: { role: "worker", name: "stuck" } },
  ], { strategy: "round_robin" });
  // The stuck worker's handler never answers (until the caller's deadline cancels it).
  nodes[2].server.register(
    "work",
    (_req, ctx) =>
      new Promise((resolve) =>
        ctx.signal.addEventListener("abort", () => resolve("too late"), { once: true })
      ),
  );
  for (const n of nodes.slice(0, 2)) n.server.register("work", () => n.id);
  const client = new ClusterClient(nodes[0].registry, { perTryTimeoutMs });
  try {
    // A non-idempotent call is never abandoned at a per-try timeout.
    const fresh = new ClusterClient(nodes[0].registry, { perTryTimeoutMs });
    const started = performance.now();
    try {
      await assert.rejects(
        fresh.callWorker("work", 0, { filter: "name=stuck", timeoutMs: 1500 }),
        (e) => RpcError.is(e, "deadline_exceeded") && !e.message.includes("per-try"),
      );
    } finally {
      await fresh.close();
    }
    assert.ok(performance.now() - started >= 1400, "it ran to its own deadline");
    let slowest = 0;
    const answers: string[] = [];
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 10; i++) {
        const t = performance.now();
        answers.push(
          await client.callWorker<string>("work", i, {
            filter: "role=worker",
            idempotent: true,
            timeoutMs: 10_000,
          }),
        );
        slowest = Math.max(slowest, performance.now() - t);
      }
    }));
    const s = client.stats();
    console.log(
      `slowest ${
        slowest.toFixed(0)
      } ms; per-try timeouts ${s.perTryTimeouts}, retries ${s.retries}, ejections ${s.ejections}`,
    );
    assert.ok(!answers.includes("too late"));
    assert.equal(s.failed, 0);
    assert.ok(s.perTryTimeouts >= 1, "attempts on the stuck worker were abandoned");
    assert.equal(s.perTryTimeouts, s.perWorker.stuck.failures, "they count as its failures");
    assert.ok(s.ejections >= 1, "the stuck worker was ejected after consecutive timeouts");
    // At most one per-try timeout (plus scheduling slack on a busy machine) per call, never
    // the call's 10 s deadline.
    assert.ok(slowest < perTryTimeoutMs + 1500, `a call took ${slowest} ms`);
  } finally {
    await client.close();
    await stopAll(nodes);
  }
});

Deno.test("hedging: a hedge to another worker wins against a slow worker; the retry budget bounds hedges", async () => {
  const nodes = await startCluster([
    { id: "fast", tags: { role: "worker" } },
    { id: "slow", tags: { role: "worker" }, delayMs: 400 },
  ], { strategy: "round_robin" });
  const hedged = new ClusterClient(nodes[0].registry, { hedging: { delayMs: 30 } });
  const bounded = new ClusterClient(nodes[0].registry, {
    hedging: { delayMs: 30 },
    retryBudget: { percentCanRetry: 0.1, minRetriesPerSec: 0 },
  });
  try {
    let slowest = 0;
    for (let i = 0; i < 40; i++) {
      const t = performance.now();
      const r = await hedged.callWorker<{ worker: string }>("echo", i, {
        filter: "role=worker",
        idempotent: true,
      });
      slowest = Math.max(slowest, performance.now() - t);
      assert.equal(r.worker, "fast");
    }
    const s = hedged.stats();
    console.log(
      `hedged: slowest ${slowest.toFixed(0)} ms, hedges ${s.hedges}, wins ${s.hedgeWins}`,
    );
    assert.ok(s.hedgeWins >= 10, `hedges won: ${s.hedgeWins}`);
    assert.ok(slowest < 300, `no call waited for the slow worker: ${slowest} ms`);
    assert.equal(s.failed, 0);

    let slowCalls = 0;
    for (let i = 0; i < 40; i++) {
      const r = await bounded.callWorker<{ worker: string }>("echo", i, {
        filter: "role=worker",
        idempotent: true,
      });
      if (r.worker === "slow") slowCalls++;
    }
    const b = bounded.stats();
    console.log(
      `bounded: hedges ${b.hedges}, refused ${b.hedgeBudgetExhausted}, answered by slow ${slowCalls}`,
    );
    assert.ok(b.hedges <= 4, `hedges within 10 % of 40 calls: ${b.hedges}`);
    assert.ok(b.hedgeBudgetExhausted > 0, "hedges beyond the budget were refused");
    assert.ok(slowCalls > 0, "without a hedge the slow worker answered");
  } finally {
    await hedged.close();
    await bounded.close();
    await stopAll(nodes);
  }
});

Deno.test("a timeout alone bounds the whole call across failover: the next attempt gets what is left of it, not a new timeout", async () => {
  const nodes = await startCluster([
    { id: "caller", tags: { role: "caller" } },
    { id: "s1", tags: { role: "worker" }, delayMs: 5000 },
    { id: "s2", tags: { role: "worker" }, delayMs: 5000 },
  ]);
  const client = new ClusterClient(nodes[0].registry, { perTryTimeoutMs: 700 });
  try {
    const started = performance.now();
    await assert.rejects(
      client.callWorker("echo", 1, { filter: "role=worker", idempotent: true, timeoutMs: 1000 }),
      (e) => RpcError.is(e, "deadline_exceeded"),
    );
    const took = performance.now() - started;
    // 700 ms on the first worker, then the 300 left on the other; a fresh timeout per attempt
    // would take 1400 ms or more.
    assert.ok(took >= 950 && took < 1250, `the call took ${took.toFixed(0)} ms`);
    assert.equal(client.stats().retries, 1);
  } finally {
    await client.close();
    await stopAll(nodes);
  }
});
