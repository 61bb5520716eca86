/** Test helper: forms a cluster of `ClusterMembership`s on a `SimNetwork` in virtual time. */
import assert from "node:assert/strict";
import type { ClusterMembership } from "../../mod.ts";
import type { SimNetwork } from "../../src/membership/sim/mod.ts";

/** Starts every node, joins all through the first, and waits until each sees all alive. */
export async function formSimCluster(net: SimNetwork, nodes: ClusterMembership[]): Promise<void> {
  for (const m of nodes) await m.start();
  const joins = nodes.slice(1).map((m) => m.join([nodes[0].localAddr]));
  await net.clock.advance(200);
  await Promise.all(joins);
  assert.ok(
    await net.clock.runUntilCondition(
      () =>
        nodes.every((m) => m.members().filter((x) => x.state === "alive").length === nodes.length),
      30_000,
    ),
    "cluster did not converge",
  );
}
