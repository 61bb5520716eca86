/**
 * A process of the "scale" bench's floor experiment: `--slots` loops, each awaiting a
 * `--hold-ms` timer over and over for `--ms`, no RPC at all: what the `hold` workload alone costs
 * the machine. Prints `{fires, seconds}` and exits.
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    slots: { type: "string", default: "8" },
    "hold-ms": { type: "string", default: "2" },
    ms: { type: "string", default: "2000" },
  },
});
const holdMs = Number(args["hold-ms"]);
const until = performance.now() + Number(args.ms);
let fires = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: Number(args.slots) }, async () => {
  while (performance.now() < until) {
    await new Promise((r) => setTimeout(r, holdMs));
    fires++;
  }
}));
console.log(JSON.stringify({ fires, seconds: (performance.now() - t0) / 1000 }));
