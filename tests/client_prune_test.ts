/**
 * `stats().perWorker` keeps only workers that are still around (issue 9, item 14): workers
 * restarted under new ids (graceful leaves and crashes) are pruned as they depart.
 */
import assert from "node:assert/strict";
import { Node } from "../mod.ts";
import { echoFrom, startCluster, stopAll } from "./_support/client_helpers.ts";
import { waitFor } from "./_support/wait.ts";

Deno.test("perWorker does not grow with every worker ever seen: 8 restarts leave 2 entries", async () => {
  const nodes = await startCluster([
    { id: "director", tags: { role: "director" } },
    { id: "stable", tags: { role: "worker" } },
  ]);
  const director = nodes[0];
  let current: Node | undefined;
  try {
    for (let i = 0; i < 8; i++) {
      current = await Node.start({
        id: `w-${i}`,
        profile: "LOCAL",
        tags: { role: "worker", name: `w-${i}` },
        seeds: [director.gossipAddr],
        handlers: { echo: echoFrom(`w-${i}`) },
      });
      await waitFor(() => director.registry.getWorker(`w-${i}`) !== undefined, `w-${i} visible`);
      for (let n = 0; n < 10; n++) {
        await director.client.callWorker("echo", n, { filter: `name=w-${i}` });
        await director.client.callWorker("echo", n, { filter: "role=worker" });
      }
      assert.ok(`w-${i}` in director.client.stats().perWorker, `w-${i} was called`);
      // Even restarts crash (NodeFailed), odd ones leave gracefully (NodeLeft).
      if (i % 2 === 0) await current.stop();
      else await current.leave();
      current = undefined;
      await waitFor(
        () => director.registry.getWorker(`w-${i}`) === undefined,
        `w-${i} gone`,
      );
    }
    const s = director.client.stats();
    console.log(
      `perWorker ${JSON.stringify(Object.keys(s.perWorker))}, pruned ${s.workerStatsPruned}`,
    );
    assert.deepEqual(
      Object.keys(s.perWorker).sort(),
      ["director", "stable"].filter((id) => id in s.perWorker),
    );
    assert.ok(Object.keys(s.perWorker).length <= 2);
    assert.ok(s.workerStatsPruned >= 8, `pruned ${s.workerStatsPruned}`);
  } finally {
    await current?.stop();
    await stopAll(nodes);
  }
});
