/**
 * Child process of the "client" bench: several worker `Node`s in ONE Deno process, each with
 * its own RPC port, gossip port and membership, serving `echo`. Prints one JSON line
 * `{ready: true, workers: [{id, rpcAddr, gossipAddr}, …]}` on stdout once all have started, and
 * leaves gracefully on SIGTERM.
 *
 * ```sh
 * deno run -A bench/client_workers.ts --ca /tmp/ca.json --seed 127.0.0.1:7946 \
 *   --id w1 --id w2 --id w3 --tags role=worker
 * ```
 *
 * Each worker gets the tags given plus `name=<id>`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Node } from "../mod.ts";
import { parseTagList, readCaFile } from "../examples/worker_process.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    id: { type: "string", multiple: true, default: [] },
    seed: { type: "string", multiple: true, default: [] },
    ca: { type: "string" },
    tags: { type: "string", default: "role=worker" },
  },
});

const tags = parseTagList(args.tags);
const devCa = await readCaFile(args.ca);

const nodes: Node[] = [];
for (const id of args.id) {
  nodes.push(
    await Node.start({
      id,
      profile: "LOCAL",
      seeds: args.seed,
      tags: { ...tags, name: id },
      devCa,
      handlers: { echo: (req) => ({ worker: id, echo: req }) },
    }),
  );
}

console.log(JSON.stringify({
  ready: true,
  workers: nodes.map((n) => ({ id: n.id, rpcAddr: n.rpcAddr, gossipAddr: n.gossipAddr })),
}));

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await Promise.all(nodes.map((n) => n.leave()));
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
