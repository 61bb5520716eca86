/**
 * Worker process of the "fanout" bench: one `Node` serving `echo` (the request as it came) and
 * `hold` (a worker of bounded capacity that waits rather than computes: at most `--capacity`
 * calls at once, each holding a `--hold-ms` timer, the rest queued FIFO; answers its own id) and
 * `holdStats` (how late the hold timers fired since the last ask).
 * Prints one JSON ready line `{ready, id, rpcAddr, gossipAddr}` and leaves on SIGTERM; exits
 * when its parent's pipe (stdin) closes, so a dead bench leaves no orphan.
 *
 * ```sh
 * deno run -A bench/fanout_worker.ts --id w1 --seed 127.0.0.1:7946 --ca /tmp/ca.json \
 *   --tags role=worker --capacity 8 --hold-ms 2
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Node, type Profile } from "../mod.ts";
import { announceReady, parseTagList, readCaFile } from "../examples/worker_process.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    id: { type: "string" },
    seed: { type: "string", multiple: true, default: [] },
    ca: { type: "string" },
    tags: { type: "string", default: "role=worker" },
    capacity: { type: "string", default: "8" },
    "hold-ms": { type: "string", default: "2" },
    profile: { type: "string", default: "LAN" },
    "tcp-lanes": { type: "boolean", default: false },
    // The address to bind and advertise (a lab host's); default: the Node's (loopback).
    bind: { type: "string" },
  },
});

const id = args.id ?? crypto.randomUUID();
const capacity = Number(args.capacity);
const holdMs = Number(args["hold-ms"]);
let running = 0;
const queue: (() => void)[] = [];
// How late each hold timer fired, µs: on an oversubscribed machine the bend in scaling is
// largely here (the event loop runs late), not in the caller.
let lateness: number[] = [];

/** Median and p99 timer lateness since the last call, then resets. */
function holdStats(): { count: number; p50us: number; p99us: number } {
  const s = lateness.sort((a, b) => a - b);
  lateness = [];
  const q = (p: number) => s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
  return { count: s.length, p50us: q(0.5), p99us: q(0.99) };
}

/** Runs `hold` calls at most `capacity` at a time, FIFO. */
async function hold(): Promise<string> {
  if (running >= capacity) await new Promise<void>((r) => queue.push(r));
  else running++;
  try {
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, holdMs));
    if (lateness.length < 100_000) lateness.push((performance.now() - t0 - holdMs) * 1000);
    return id;
  } finally {
    const next = queue.shift();
    if (next) next(); // the slot passes to the next caller
    else running--;
  }
}

const node = await Node.start({
  id,
  profile: args.profile as Profile,
  seeds: args.seed,
  tags: { ...parseTagList(args.tags), name: id },
  devCa: await readCaFile(args.ca),
  tcpLanes: args["tcp-lanes"],
  bind: args.bind,
  leaveOnSignals: true,
  handlers: { echo: (req) => req, hold, holdStats },
});

announceReady(node);
// The parent holds our stdin: EOF means it is gone (signals leave through leaveOnSignals).
for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
await node.leave();
Deno.exit(0);
