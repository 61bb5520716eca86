/**
 * A worker whose RPC secret differs from the client's (issue 9, item 7): its rejection happens
 * before any handler runs, so every call — idempotent or not — is tried on another worker, and
 * the worker is ejected at once instead of failing a share of the calls.
 */
import assert from "node:assert/strict";
import { Node } from "../mod.ts";
import { echoFrom, stopAll } from "./_support/client_helpers.ts";
import { waitFor } from "./_support/wait.ts";

Deno.test("a worker with the wrong secret: no call fails, the worker is ejected, auth failures counted", async () => {
  const nodes: Node[] = [];
  try {
    const seed = await Node.start({
      id: "director",
      profile: "LOCAL",
      tags: { role: "director" },
      secret: "right",
      handlers: { echo: echoFrom("director") },
    });
    nodes.push(seed);
    for (const [id, secret] of [["w1", "right"], ["w2", "right"], ["bad", "wrong"]]) {
      nodes.push(
        await Node.start({
          id,
          profile: "LOCAL",
          tags: { role: "worker" },
          secret,
          seeds: [seed.gossipAddr],
          handlers: { echo: echoFrom(id) },
        }),
      );
    }
    await waitFor(() => seed.registry.workers("role=worker").length === 3, "3 workers");
    const client = seed.client;
    let failed = 0;
    const served: Record<string, number> = {};
    const errors: string[] = [];
    const loops = Array.from({ length: 8 }, async (_, i) => {
      for (let n = 0; n < 60; n++) {
        try {
          const r = await client.callWorker<{ worker: string }>("echo", n, {
            filter: "role=worker",
            // Half the calls are not idempotent: a rejected secret means no handler ran.
            idempotent: i % 2 === 0,
            timeoutMs: 5000,
          });
          served[r.worker] = (served[r.worker] ?? 0) + 1;
        } catch (e) {
          failed++;
          errors.push(String(e));
        }
      }
    });
    await Promise.all(loops);
    const s = client.stats();
    console.log(
      `served ${
        JSON.stringify(served)
      }; auth failures ${s.authFailures}, auth ejections ${s.authEjections}, ` +
        `ejections ${s.ejections}, retries ${s.retries}, failed ${s.failed}`,
    );
    assert.equal(failed, 0, `failed calls: ${errors.slice(0, 3).join("; ")}`);
    assert.equal(served.bad, undefined, "the wrong-secret worker ran no handler");
    assert.ok(s.authFailures >= 1, "authentication failures are counted");
    assert.ok(s.authEjections >= 1 && s.ejections >= 1, "the worker was ejected");
    assert.ok(s.retries >= s.authFailures, "each rejected attempt was tried elsewhere");
    // Ejected at once: far fewer attempts than the calls a third of the traffic would be.
    assert.ok(s.authFailures <= 20, `only a few attempts hit the bad worker: ${s.authFailures}`);
  } finally {
    await stopAll(nodes);
  }
});
