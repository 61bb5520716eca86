/**
 * A worker process for the demo (and the kill tests): joins the cluster through a seed, serves
 * `compute` and `echo`, prints one JSON "ready" line on stdout, and leaves gracefully on SIGTERM.
 *
 * ```sh
 * deno run -A examples/demo_worker.ts --id w1 --seed 127.0.0.1:7946 --ca /tmp/ca.json \
 *   --tags role=worker,zone=eu-1 --delay-ms 2
 * ```
 *
 * `--ca` names a JSON file `{certPem, keyPem}` of the development CA every process shares.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Node, type Profile } from "../mod.ts";
import { announceReady, parseTagList, readCaFile } from "./worker_process.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    id: { type: "string" },
    seed: { type: "string", multiple: true, default: [] },
    ca: { type: "string" },
    tags: { type: "string", default: "role=worker" },
    "delay-ms": { type: "string", default: "1" },
    "rpc-port": { type: "string", default: "0" },
    "gossip-port": { type: "string", default: "0" },
    profile: { type: "string", default: "LOCAL" },
  },
});

const tags = parseTagList(args.tags);
const devCa = await readCaFile(args.ca);
const delayMs = Number(args["delay-ms"]);
const id = args.id ?? crypto.randomUUID();
let served = 0;

const node = await Node.start({
  id,
  profile: args.profile as Profile,
  rpcPort: Number(args["rpc-port"]),
  gossipPort: Number(args["gossip-port"]),
  seeds: args.seed,
  tags,
  devCa,
  leaveOnSignals: true,
  handlers: {
    compute: async (req) => {
      served++;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      const n = (req as { n?: number })?.n ?? 0;
      return { worker: id, result: n * n };
    },
    echo: (req) => ({ worker: id, echo: req }),
    sleep: async (req, ctx) => {
      const ms = Number((req as { ms?: number })?.ms ?? 0);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        ctx.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
      });
      return { worker: id, slept: ms };
    },
    served: () => served,
  },
});

announceReady(node);
