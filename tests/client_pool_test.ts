import assert from "node:assert/strict";
import { ClusterClient, type RpcClient, RpcError, WorkerRegistry } from "../mod.ts";
import { FakeMembership } from "./_support/registry_fakes.ts";

/** A connection that answers with the worker's address, or hangs until closed. */
function fakeClient(addr: string, opened: string[], hang = false): RpcClient {
  opened.push(addr);
  const pending = new Set<(e: Error) => void>();
  let closed = false;
  return {
    get closed() {
      return closed;
    },
    call: () => hang ? new Promise((_, reject) => pending.add(reject)) : Promise.resolve({ addr }),
    close: () => {
      closed = true;
      for (const r of pending) r(new RpcError("unavailable", "connection closed"));
      return Promise.resolve();
    },
  } as unknown as RpcClient;
}

Deno.test("a worker with a malformed gossiped address is unavailable, and every call avoids it (the request never left)", async () => {
  const m = new FakeMembership("me");
  m.set("bad", "alive", { role: "worker" }, "not-an-address");
  m.set("good", "alive", { role: "worker" }, "127.0.0.1:4000");
  const registry = new WorkerRegistry(m, { strategy: "round_robin" });
  const opened: string[] = [];
  const client = new ClusterClient(registry, {
    connect: (h, p) => Promise.resolve(fakeClient(`${h}:${p}`, opened)),
  });
  try {
    for (let i = 0; i < 6; i++) {
      const r = await client.callWorker<{ addr: string }>("x", i, {
        filter: "role=worker",
        idempotent: i % 2 === 0,
      });
      assert.equal(r.addr, "127.0.0.1:4000");
    }
    assert.ok(client.stats().retries > 0, "calls picked for the bad worker were failed over");
    assert.equal(client.stats().failed, 0);
    assert.deepEqual(opened, ["127.0.0.1:4000"], "one pooled connection, opened once");
  } finally {
    await client.close();
    registry.close();
  }
});

Deno.test("NodeFailed fails the calls in flight on that worker at once, not at their timeout", async () => {
  const m = new FakeMembership("me");
  m.set("w1", "alive", { role: "worker" }, "127.0.0.1:4001");
  const registry = new WorkerRegistry(m);
  const opened: string[] = [];
  const client = new ClusterClient(registry, {
    connect: (h, p) => Promise.resolve(fakeClient(`${h}:${p}`, opened, true)),
  });
  try {
    const inFlight = client.callWorker("x", 1, { filter: "role=worker" });
    await new Promise((r) => setTimeout(r, 10));
    m.set("w1", "dead", { role: "worker" });
    await assert.rejects(
      inFlight,
      (e) => RpcError.is(e, "unavailable") && e.message.includes("NodeFailed"),
    );
    assert.equal(client.stats().evictions, 1);
    assert.equal(client.stats().connections, 0);
    await assert.rejects(
      client.callWorker("x", 1, { filter: "role=worker" }),
      (e) => RpcError.is(e, "unavailable") && e.message.includes("no worker matches"),
    );
  } finally {
    await client.close();
    registry.close();
  }
});
