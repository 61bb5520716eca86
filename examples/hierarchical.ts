/**
 * Hierarchical: a master talks to region leaders, each leader fans work out to the workers of
 * its own region (tagged by zone). One gossip cluster; tags decide every hop.
 *
 * ```
 *            master
 *          /        \
 *   leader eu      leader us
 *    /     \         /    \
 * eu-1 w  eu-2 w  us-1 w  us-2 w
 * ```
 *
 * ```sh
 * deno run -A examples/hierarchical.ts
 * ```
 *
 * @module
 */
import { Node } from "../mod.ts";

const master = await Node.start({ id: "master", profile: "LOCAL", tags: { role: "master" } });
const seeds = [master.gossipAddr];
const nodes: Node[] = [master];

// Workers: role=worker with a region and a zone.
for (const [region, zone] of [["eu", "eu-1"], ["eu", "eu-2"], ["us", "us-1"], ["us", "us-2"]]) {
  const id = `worker-${zone}`;
  nodes.push(
    await Node.start({
      id,
      profile: "LOCAL",
      tags: { role: "worker", region, zone },
      seeds,
      handlers: { compute: (req) => ({ worker: id, zone, result: (req as number) * 10 }) },
    }),
  );
}

// Region leaders: `region.compute` fans out to every worker of their region and sums up.
for (const region of ["eu", "us"]) {
  const leader: Node = await Node.start({
    id: `leader-${region}`,
    profile: "LOCAL",
    tags: { role: "leader", region },
    seeds,
  });
  leader.register("region.compute", async (req, ctx) => {
    const results = await leader.client.callAll<{ worker: string; result: number }>(
      "compute",
      req,
      { filter: `role=worker,region=${region}`, deadline: ctx.deadline },
    );
    const ok = results.flatMap((r) => (r.ok ? [r.value] : []));
    return {
      leader: leader.id,
      workers: ok.map((r) => r.worker),
      total: ok.reduce((a, r) => a + r.result, 0),
    };
  });
  nodes.push(leader);
}

while (master.nodes.alive().length < nodes.length) await new Promise((r) => setTimeout(r, 20));

// The master picks the leader of each region by tag; the leader picks its zone workers.
for (const region of ["eu", "us"]) {
  const r = await master.client.callWorker<{ leader: string; workers: string[]; total: number }>(
    "region.compute",
    7,
    { filter: `role=leader,region=${region}`, timeoutMs: 5000 },
  );
  console.log(`region ${region}: ${r.leader} used ${r.workers.join(", ")} -> total ${r.total}`);
  if (r.workers.length !== 2 || r.total !== 140) throw new Error("unexpected fan-out");
}
// A zone-targeted call straight from the master skips the leaders.
const direct = await master.client.callWorker<{ worker: string }>("compute", 1, {
  filter: "role=worker,zone in (eu-2,us-2)",
});
console.log(`zone in (eu-2,us-2) -> ${direct.worker}`);

await Promise.all(nodes.slice(1).map((n) => n.leave()));
await master.leave();
console.log("done");
