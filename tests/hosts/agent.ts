/**
 * One cluster node per process, for the multi-host suite and the signal tests: starts a `Node`
 * from flags through the public API only, serves `work` (an idempotent handler that waits
 * `--work-ms`), and a few `ctl.*` methods the test driver calls with a plain `RpcClient` to look
 * at this node's view, its event log and counters, and to run load from it. The driver never
 * joins the gossip (it would bridge partitions). Prints one JSON line `{"ready": …}` when started;
 * leaves gracefully on SIGTERM.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type ClusterEvent, Keyring, loadDevCa, Node, type Profile, RpcError } from "../../mod.ts";

function decodeBase64Key(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

const args = parseArgs({
  args: Deno.args,
  options: {
    id: { type: "string" },
    bind: { type: "string", default: "127.0.0.1" },
    advertise: { type: "string" },
    "rpc-port": { type: "string", default: "0" },
    "gossip-port": { type: "string", default: "0" },
    seeds: { type: "string", default: "" },
    tags: { type: "string", default: "role=worker" },
    ca: { type: "string" },
    profile: { type: "string", default: "LAN" },
    label: { type: "string" },
    key: { type: "string" },
    secret: { type: "string" },
    "work-ms": { type: "string", default: "5" },
    "server-name": { type: "string" },
  },
});
const v = args.values;
const tags: Record<string, string> = {};
for (const kv of v.tags!.split(",").filter(Boolean)) {
  const [k, val = ""] = kv.split("=");
  tags[k] = val;
}
const workMs = Number(v["work-ms"]);

interface LoggedEvent {
  t: number;
  type: string;
  id?: string;
  reachable?: readonly string[];
  unreachable?: readonly string[];
  members?: readonly string[];
}
const events: LoggedEvent[] = [];
const MAX_EVENTS = 100_000;

/** Load run from this node: `inFlight` workers each calling `work` in a loop. */
class Load {
  ok = 0;
  failed = 0;
  errors: Record<string, number> = {};
  samples: string[] = [];
  byWorker: Record<string, number> = {};
  maxLatencyMs = 0;
  #running = true;
  #loops: Promise<void>[] = [];

  constructor(node: Node, inFlight: number, timeoutMs: number, filter: string) {
    for (let i = 0; i < inFlight; i++) {
      this.#loops.push((async () => {
        let n = 0;
        // Bounded: stops when stop() is called (the driver always calls it, and the agent's
        // process ends with the test).
        while (this.#running) {
          const t0 = performance.now();
          try {
            const r = await node.client.callWorker<{ worker: string }>("work", n++, {
              filter,
              timeoutMs,
              idempotent: true,
            });
            this.ok++;
            this.byWorker[r.worker] = (this.byWorker[r.worker] ?? 0) + 1;
          } catch (e) {
            this.failed++;
            const code = RpcError.is(e) ? e.code : "other";
            this.errors[code] = (this.errors[code] ?? 0) + 1;
            if (this.samples.length < 5) this.samples.push(String(e).slice(0, 300));
            await new Promise((r) => setTimeout(r, 10));
          }
          this.maxLatencyMs = Math.max(this.maxLatencyMs, performance.now() - t0);
        }
      })());
    }
  }

  snapshot() {
    return {
      ok: this.ok,
      failed: this.failed,
      errors: this.errors,
      samples: this.samples,
      byWorker: this.byWorker,
      maxLatencyMs: Math.round(this.maxLatencyMs),
    };
  }

  async stop() {
    this.#running = false;
    await Promise.all(this.#loops);
    return this.snapshot();
  }
}

let load: Load | undefined;
let node: Node | undefined;

try {
  node = await Node.start({
    id: v.id,
    bind: v.bind,
    advertise: v.advertise,
    rpcPort: Number(v["rpc-port"]),
    gossipPort: Number(v["gossip-port"]),
    seeds: v.seeds!.split(",").filter(Boolean),
    tags,
    profile: v.profile as Profile,
    label: v.label,
    keyring: v.key ? new Keyring([decodeBase64Key(v.key)]) : undefined,
    secret: v.secret,
    devCa: v.ca ? await loadDevCa(v.ca) : undefined,
    serverName: v["server-name"],
    leaveOnSignals: true,
    handlers: {
      work: async (req) => {
        if (workMs > 0) await new Promise((r) => setTimeout(r, workMs));
        return { worker: v.id, n: req };
      },
      "ctl.view": () => ({
        id: node!.id,
        ready: node!.ready,
        members: node!.membership.members().map((m) => ({
          id: m.id,
          state: m.state,
          incarnation: m.incarnation,
        })),
      }),
      "ctl.events": (since) => events.slice(Number(since) || 0),
      "ctl.stats": () => ({
        membership: node!.membership.stats(),
        server: node!.server.stats(),
        client: { ...node!.client.stats(), perWorker: undefined },
      }),
      "ctl.loadStart": (req) => {
        const o = req as { inFlight: number; timeoutMs: number; filter: string };
        if (load) throw new RpcError("invalid_argument", "load already running");
        load = new Load(node!, o.inFlight, o.timeoutMs, o.filter);
        return true;
      },
      "ctl.loadStats": () => load?.snapshot(),
      "ctl.loadStop": async () => {
        const l = load;
        load = undefined;
        return l ? await l.stop() : undefined;
      },
      "ctl.call": async (req) => {
        // One call from this node (the wrong-secret test calls the cluster from the intruder).
        const o = req as { filter: string; timeoutMs: number };
        try {
          return { ok: await node!.client.callWorker("work", 0, o) };
        } catch (e) {
          return { error: String(e), code: RpcError.is(e) ? e.code : "other" };
        }
      },
    },
  });
} catch (e) {
  console.log(JSON.stringify({ ready: false, error: String(e) }));
  Deno.exit(2);
}

(async () => {
  for await (
    const e of node.membership.subscribe({ bufferSize: 65536 }) as AsyncIterable<
      ClusterEvent
    >
  ) {
    if (events.length >= MAX_EVENTS) events.shift();
    const rec: LoggedEvent = { t: Date.now(), type: e.type };
    if ("node" in e) rec.id = e.node.id;
    if (e.type === "PartitionDetected") {
      rec.reachable = e.reachable;
      rec.unreachable = e.unreachable;
    }
    if (e.type === "PartitionHealed") rec.members = e.members;
    events.push(rec);
  }
})();

console.log(JSON.stringify({
  ready: true,
  id: node.id,
  rpcAddr: node.rpcAddr,
  gossipAddr: node.gossipAddr,
  pid: Deno.pid,
}));
