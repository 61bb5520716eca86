/**
 * Worker processes restarted at the same address (issue 9, items 5 and 6): a `kill -9` and an
 * immediate restart with the same id stalls nobody for long (the pool's liveness probe notices
 * the dead connection); a replacement with a new id keeps its connection when the old id's
 * `NodeFailed` arrives.
 */
import assert from "node:assert/strict";
import { type ClusterEvent, createDevCa, Node, RpcError } from "../mod.ts";
import { ReadyProcess, type WorkerInfo, writeCaFile } from "../examples/worker_process.ts";
import { sleep, waitFor } from "./_support/wait.ts";

const WORKER = new URL("../examples/demo_worker.ts", import.meta.url).pathname;

function portOf(addr: string): string {
  return addr.slice(addr.lastIndexOf(":") + 1);
}

/** Starts `examples/demo_worker.ts`, on given ports when `at` names a previous process. */
function startWorker(
  id: string,
  seed: string,
  caFile: string,
  at?: WorkerInfo,
): Promise<ReadyProcess<WorkerInfo>> {
  const args = ["--id", id, "--ca", caFile, "--seed", seed, "--tags", `role=worker,name=${id}`];
  args.push("--delay-ms", "2");
  if (at) args.push("--rpc-port", portOf(at.rpcAddr), "--gossip-port", portOf(at.gossipAddr));
  return ReadyProcess.start<WorkerInfo>(WORKER, args, `worker ${id}`);
}

Deno.test({
  name:
    "kill -9 and an immediate restart at the same address and id: no call fails and calls stall about a second, not until the QUIC idle timeout",
  fn: async () => {
    const ca = await createDevCa();
    const caFile = await writeCaFile(ca);
    const director = await Node.start({
      id: "director",
      profile: "LOCAL",
      tags: { role: "director" },
      devCa: ca,
    });
    const procs: ReadyProcess<WorkerInfo>[] = [];
    let stop = false;
    let loops: Promise<void>[] = [];
    try {
      procs.push(
        ...await Promise.all(
          ["w1", "w2", "w3"].map((id) => startWorker(id, director.gossipAddr, caFile)),
        ),
      );
      await waitFor(() => director.registry.workers("role=worker").length === 3, "3 workers");
      const old = procs[1].ready;

      let ok = 0;
      const failures: unknown[] = [];
      let slowest = 0;
      let killedAt = Infinity;
      let slowestAfterKill = 0;
      loops = Array.from({ length: 32 }, async (_, i) => {
        // Bounded: a client that fails fast must not spin the test forever.
        while (!stop && failures.length < 1000) {
          const t = performance.now();
          try {
            await director.client.callWorker("compute", { n: i }, {
              filter: "role=worker",
              idempotent: true,
              timeoutMs: 5000,
            });
            ok++;
          } catch (e) {
            failures.push(e);
          }
          const took = performance.now() - t;
          slowest = Math.max(slowest, took);
          if (t >= killedAt - 50) slowestAfterKill = Math.max(slowestAfterKill, took);
        }
      });
      await waitFor(() => ok > 500, "load to start");
      await waitFor(() => (director.client.stats().perWorker.w2?.calls ?? 0) > 50, "w2 busy");
      killedAt = performance.now();
      await procs[1].kill();
      procs[1] = await startWorker("w2", director.gossipAddr, caFile, old);
      const restartedAt = performance.now();
      assert.equal(procs[1].ready.rpcAddr, old.rpcAddr, "restarted at the same address");
      // The restarted process must take calls again, through a new connection.
      let servedByNew = 0;
      const poll = async () => {
        while (!stop && servedByNew === 0) {
          try {
            servedByNew = await director.client.callWorker<number>("served", null, {
              filter: "name=w2",
              timeoutMs: 250,
            });
          } catch { /* not yet */ }
          await sleep(50);
        }
      };
      const polling = poll();
      await waitFor(() => servedByNew > 0, "the restarted w2 to serve calls", { timeoutMs: 8000 });
      const reachedAfter = performance.now() - restartedAt;
      await polling;
      await sleep(1000);
      stop = true;
      await Promise.all(loops);
      const s = director.client.stats();
      console.log(
        `calls ${ok}, failed ${failures.length}, slowest call after the kill ${
          slowestAfterKill.toFixed(0)
        } ms, restart took ${(restartedAt - killedAt).toFixed(0)} ms, new w2 reached ${
          reachedAfter.toFixed(0)
        } ms after its ready line; probes ${s.probes}, probe evictions ${s.probeFailures}, ` +
          `retries ${s.retries}, ejections ${s.ejections}`,
      );
      assert.deepEqual(failures, [], "no idempotent call may fail");
      assert.ok(s.probeFailures >= 1, "the dead connection was evicted by a liveness probe");
      assert.ok(
        slowestAfterKill < 4000,
        `calls stalled ${slowestAfterKill.toFixed(0)} ms`,
      );
    } finally {
      stop = true;
      await Promise.all(loops);
      await Promise.all(procs.map((p) => p.stop()));
      await director.stop();
      await Deno.remove(caFile);
    }
  },
});

Deno.test({
  name:
    "a worker replaced by a new process (new id) on the same ports: the old id's NodeFailed leaves the new process's connection and calls alone",
  fn: async () => {
    const ca = await createDevCa();
    const caFile = await writeCaFile(ca);
    const director = await Node.start({
      id: "director",
      profile: "LOCAL",
      tags: { role: "director" },
      devCa: ca,
    });
    const events: ClusterEvent[] = [];
    const onFailed = (e: CustomEvent<ClusterEvent>) => events.push(e.detail);
    director.nodes.addEventListener("NodeFailed", onFailed);
    const procs: ReadyProcess<WorkerInfo>[] = [];
    try {
      procs.push(await startWorker("old", director.gossipAddr, caFile));
      await waitFor(() => director.registry.workers("name=old").length === 1, "old worker");
      await director.client.callWorker("compute", { n: 1 }, { filter: "name=old" });
      const at = procs[0].ready;
      await procs[0].kill();
      procs[0] = await startWorker("new", director.gossipAddr, caFile, at);
      await waitFor(() => director.registry.workers("name=new").length === 1, "new worker");
      // Not idempotent, in flight on the new process when the old id is declared failed.
      const pinned = director.client.callWorker<{ worker: string }>("sleep", { ms: 6000 }, {
        filter: "name=new",
        timeoutMs: 20_000,
      }).then((v) => v, (e: unknown) => e);
      await waitFor(
        () => events.some((e) => e.type === "NodeFailed" && e.node.id === "old"),
        "NodeFailed for the old id",
        { timeoutMs: 15_000 },
      );
      const result = await pinned;
      assert.ok(!(result instanceof RpcError), `the new process's call failed: ${result}`);
      assert.equal((result as { worker: string }).worker, "new");
    } finally {
      director.nodes.removeEventListener("NodeFailed", onFailed);
      await Promise.all(procs.map((p) => p.stop()));
      await director.stop();
      await Deno.remove(caFile);
    }
  },
});
