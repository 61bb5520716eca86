/**
 * `deno task sim -- --nodes 1000 --loss 0.1 --scenario false-positives --profile LAN --duration 600`
 *
 * Runs the membership simulator and prints a readable report (`--json`: the raw report). The
 * command itself is `rpcnet sim` (src/cli/sim.ts); this task adds the V8 flags for exact heap
 * figures.
 *
 * @module
 */
import { main } from "../src/cli/main.ts";

Deno.exit(await main(["sim", ...Deno.args.filter((a) => a !== "--")]));
