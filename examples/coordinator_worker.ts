/**
 * Coordinator-worker: a director routes calls to a pool of workers; its callers only know the
 * director's address and never join the gossip.
 *
 * ```sh
 * deno run -A examples/coordinator_worker.ts
 * ```
 *
 * @module
 */
import { Director, Node, RpcClient } from "../mod.ts";

// The director is a cluster member (it must see the workers) tagged role=director.
const director = await Node.start({
  id: "director",
  profile: "LOCAL",
  tags: { role: "director" },
  strategy: "least_connections",
});

// Three workers join through the director's gossip address and serve `compute`.
const workers = await Promise.all(["worker-1", "worker-2", "worker-3"].map((id) =>
  Node.start({
    id,
    profile: "LOCAL",
    tags: { role: "worker" },
    seeds: [director.gossipAddr],
    handlers: {
      compute: async (req) => {
        await new Promise((r) => setTimeout(r, 2)); // some work
        return { worker: id, square: (req as number) ** 2 };
      },
    },
  })
));

// Wait until the director sees all three workers.
while (director.registry.workers("role=worker").length < 3) {
  await new Promise((r) => setTimeout(r, 20));
}
console.log(
  "workers:",
  director.registry.workers("role=worker").map((w) => `${w.label}@${w.addr}`),
);

// The Director serves `compute` and forwards each call to a worker (idempotent: fails over).
const front = await Director.start({
  client: director.client,
  methods: { compute: { filter: "role=worker", idempotent: true } },
});

// A plain RPC client: no gossip, no registry, just the director's address.
const caller = await RpcClient.connect({ hostname: "127.0.0.1", port: front.addr.port });
const perWorker: Record<string, number> = {};
await Promise.all(Array.from({ length: 60 }, async (_, i) => {
  const r = await caller.call<{ worker: string; square: number }>("compute", i, {
    timeoutMs: 5000,
  });
  if (r.square !== i * i) throw new Error("wrong answer");
  perWorker[r.worker] = (perWorker[r.worker] ?? 0) + 1;
}));
console.log("calls per worker:", perWorker);

await caller.close();
await front.close();
await Promise.all(workers.map((w) => w.leave()));
await director.leave();
console.log("done");
