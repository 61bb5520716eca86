import assert from "node:assert/strict";
import { type ClusterEvent, createDevCa, Node, RpcError } from "../mod.ts";
import { WorkerProcess, writeCaFile } from "../examples/worker_process.ts";
import { sleep, waitFor } from "./_support/wait.ts";

Deno.test({
  name:
    "a worker SIGKILLed under load: no idempotent call fails, non-idempotent ones fail unavailable",
  sanitizeResources: true,
  fn: async () => {
    const ca = await createDevCa();
    const caFile = await writeCaFile(ca);
    const director = await Node.start({
      id: "director",
      profile: "LOCAL",
      tags: { role: "director" },
      devCa: ca,
      strategy: "least_connections",
    });
    const events: ClusterEvent[] = [];
    const onFailed = (e: CustomEvent<ClusterEvent>) => events.push(e.detail);
    director.nodes.addEventListener("NodeFailed", onFailed);
    const workers: WorkerProcess[] = [];
    try {
      workers.push(
        ...await Promise.all(["w1", "w2", "w3"].map((id) =>
          WorkerProcess.spawn({
            id,
            seeds: [director.gossipAddr],
            caFile,
            tags: `role=worker,name=${id}`,
            delayMs: 2,
          })
        )),
      );
      await waitFor(() => director.registry.workers("role=worker").length === 3, "3 workers");

      let stop = false;
      let ok = 0;
      const idempotentFailures: unknown[] = [];
      const loops = Array.from({ length: 16 }, async (_, i) => {
        while (!stop) {
          try {
            await director.client.callWorker("compute", { n: i }, {
              filter: "role=worker",
              idempotent: true,
              timeoutMs: 20_000,
            });
            ok++;
          } catch (e) {
            idempotentFailures.push(e);
          }
        }
      });
      await waitFor(() => ok > 200, "load to start");
      // A non-idempotent call in flight on w2 when it dies must fail with unavailable.
      const pinned = director.client.callWorker("sleep", { ms: 15_000 }, {
        filter: "name=w2",
        timeoutMs: 30_000,
      }).then(() => undefined, (e) => e);
      await sleep(100);
      await workers[1].kill();
      const killedAt = Date.now();
      await waitFor(
        () => events.some((e) => e.type === "NodeFailed" && e.node.id === "w2"),
        "NodeFailed for w2",
      );
      const okAtFailure = ok;
      await waitFor(() => ok > okAtFailure + 300, "load to continue after the failure");
      stop = true;
      await Promise.all(loops);

      const pinnedError = await pinned;
      assert.ok(RpcError.is(pinnedError, "unavailable"), `pinned call: ${pinnedError}`);
      assert.deepEqual(idempotentFailures, [], "no idempotent call may fail");
      // After NodeFailed, w2 receives nothing more: its counters were pruned, not recreated.
      assert.ok(!("w2" in director.client.stats().perWorker), "w2 pruned and not called again");
      assert.equal(director.registry.workers("role=worker").length, 2);
      const stats = director.client.stats();
      assert.ok(stats.perWorker.w1.calls > 0 && stats.perWorker.w3.calls > 0);
      console.log(
        `detected in ${
          events.find((e) => e.type === "NodeFailed")!.node.stateChangedAt - killedAt
        } ms; retries ${stats.retries}, evictions ${stats.evictions}`,
      );
    } finally {
      director.nodes.removeEventListener("NodeFailed", onFailed);
      await Promise.all(workers.map((w) => w.stop()));
      await director.stop();
      await Deno.remove(caFile);
    }
  },
});
