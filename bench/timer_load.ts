/**
 * A process of the "scale" bench's floor experiments: `--slots` loops, each awaiting a
 * `--hold-ms` timer over and over for `--ms`, no RPC at all: what the `hold` workload alone costs
 * the machine, and how late this runtime fires the timers. Prints `{fires, seconds, p50us,
 * p99us}` (lateness past `--hold-ms`) and exits.
 *
 * `--from` sets where each loop arms its next timer, as a handler's code would be running:
 * `timer` (straight from the previous timer's callback), `immediate` (from a `setImmediate`
 * callback, where Node-style code runs after I/O) or `io` (after a completed async operation,
 * here a `stat`, as a handler called for an incoming request does).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { setImmediate } from "node:timers";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    slots: { type: "string", default: "8" },
    "hold-ms": { type: "string", default: "2" },
    ms: { type: "string", default: "2000" },
    from: { type: "string", default: "timer" },
  },
});
const holdMs = Number(args["hold-ms"]);
const from = args.from;
if (from !== "timer" && from !== "immediate" && from !== "io") {
  throw new Error(`--from must be timer, immediate or io, not '${from}'`);
}
const until = performance.now() + Number(args.ms);

// For `io`: an async operation completed by the runtime's event loop (a `stat` on its blocking
// pool), as the read that hands a handler its request is.
const io = from === "io" ? () => Deno.stat(".") : undefined;

let fires = 0;
const lateness: number[] = [];
const t0 = performance.now();
await Promise.all(Array.from({ length: Number(args.slots) }, async () => {
  while (performance.now() < until) {
    if (from === "immediate") await new Promise((r) => setImmediate(r));
    else if (io) await io();
    const armed = performance.now();
    await new Promise((r) => setTimeout(r, holdMs));
    if (lateness.length < 100_000) lateness.push((performance.now() - armed - holdMs) * 1000);
    fires++;
  }
}));
const sorted = Float64Array.from(lateness).sort();
console.log(JSON.stringify({
  fires,
  seconds: (performance.now() - t0) / 1000,
  p50us: sorted[Math.floor(sorted.length / 2)] ?? NaN,
  p99us: sorted[Math.floor(sorted.length * 0.99)] ?? NaN,
}));
Deno.exit(0);
