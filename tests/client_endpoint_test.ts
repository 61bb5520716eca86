import assert from "node:assert/strict";
import { type CallContext, ClusterClient, WorkerRegistry } from "../mod.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";
import { waitFor } from "./_support/wait.ts";

const whoami = (_req: unknown, ctx: CallContext) => ctx.remoteAddr;

Deno.test("ClusterClient connects to every worker through one shared QUIC endpoint (shareEndpoint: false gives one each)", async () => {
  const nodes = await startCluster([
    { id: "client", tags: { role: "client" } },
    { id: "w1", tags: { role: "worker" } },
    { id: "w2", tags: { role: "worker" } },
    { id: "w3", tags: { role: "worker" } },
  ], { handlers: { whoami } });
  const registry = new WorkerRegistry(nodes[0].membership, { strategy: "round_robin" });
  const shared = new ClusterClient(registry);
  const separate = new ClusterClient(registry, { shareEndpoint: false });
  try {
    // The workers see the caller's UDP address: one socket for all three, or three sockets.
    const viaShared = await shared.callAll<string>("whoami", null, { filter: "role=worker" });
    assert.equal(viaShared.length, 3);
    assert.ok(viaShared.every((r) => r.ok));
    const sharedAddrs = new Set(viaShared.map((r) => r.ok ? r.value : ""));
    assert.equal(sharedAddrs.size, 1, `one client address: ${[...sharedAddrs]}`);

    const viaSeparate = await separate.callAll<string>("whoami", null, { filter: "role=worker" });
    const separateAddrs = new Set(viaSeparate.map((r) => r.ok ? r.value : ""));
    assert.equal(separateAddrs.size, 3, `three client addresses: ${[...separateAddrs]}`);
  } finally {
    await shared.close();
    await separate.close();
    registry.close();
    await stopAll(nodes);
  }
});

Deno.test("ClusterClient on a shared endpoint reconnects to every worker after idle close, no call failing (session tickets of same-named workers do not break 0-RTT reconnects)", async () => {
  const nodes = await startCluster([
    { id: "client", tags: { role: "client" } },
    { id: "w1", tags: { role: "worker" } },
    { id: "w2", tags: { role: "worker" } },
    { id: "w3", tags: { role: "worker" } },
  ]);
  const registry = new WorkerRegistry(nodes[0].membership, { strategy: "round_robin" });
  const client = new ClusterClient(registry, { idleTimeoutMs: 100 });
  try {
    for (let round = 0; round < 3; round++) {
      const seen = new Set<string>();
      const results = await Promise.all(
        Array.from(
          { length: 30 },
          (_, i) =>
            client.callWorker<{ worker: string; echo: number }>("echo", i, {
              filter: "role=worker",
              timeoutMs: 10_000,
            }),
        ),
      );
      for (const [i, r] of results.entries()) {
        assert.equal(r.echo, i);
        seen.add(r.worker);
      }
      assert.deepEqual([...seen].sort(), ["w1", "w2", "w3"]);
      await waitFor(() => client.stats().connections === 0, "idle connections to close");
    }
    assert.equal(client.stats().failed, 0);
  } finally {
    await client.close();
    registry.close();
    await stopAll(nodes);
  }
});
