/**
 * A graceful leave is seen as NodeLeft (never NodeFailed) even when the leaver's only peer is the
 * seed: regression for a leave that picked its gossip targets after dropping off the live ring.
 */
import assert from "node:assert/strict";
import { type ClusterEvent, ClusterMembership } from "../mod.ts";
import { eventually } from "./wait.ts";

Deno.test("membership over UDP: in a two-node cluster a graceful leave is NodeLeft at the seed, not NodeFailed", async () => {
  const seed = new ClusterMembership({ id: "seed", profile: "LOCAL" });
  const leaver = new ClusterMembership({ id: "leaver", profile: "LOCAL" });
  await seed.start();
  await leaver.start();
  const seen: ClusterEvent[] = [];
  for (const t of ["NodeLeft", "NodeFailed"] as const) {
    seed.addEventListener(t, (e) => seen.push(e.detail));
  }
  try {
    await leaver.join([seed.localAddr]);
    assert.ok(await eventually(() => seed.get("leaver")?.state === "alive", 10_000));
    await leaver.leave();
    assert.ok(await eventually(() => seen.length > 0, 10_000), "the seed saw no event");
    // Give a wrong NodeFailed time to show up after the NodeLeft.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(seen.map((e) => e.type), ["NodeLeft"]);
    assert.equal(seed.get("leaver")?.state, "left");
  } finally {
    await leaver.shutdown();
    await seed.shutdown();
  }
});
