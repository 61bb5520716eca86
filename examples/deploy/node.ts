/**
 * A deployable node: configured from the environment, so one image runs anywhere (a VM, a
 * container, a Kubernetes pod). Serves `compute` (tagged `role=worker` by default), leaves
 * gracefully on SIGTERM/SIGINT, and writes a readiness file while it is ready.
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-env --allow-sys=networkInterfaces --allow-write=/tmp \
 *   --unstable-net examples/deploy/node.ts
 * ```
 *
 * Environment (every variable is optional):
 * - `RPCNET_ID`: node id (default: the host name).
 * - `RPCNET_BIND`: host both sockets bind (default `0.0.0.0`).
 * - `RPCNET_ADVERTISE`: address other nodes call (default: the first private interface address).
 * - `RPCNET_RPC_PORT` (default 7373), `RPCNET_GOSSIP_PORT` (default 7946).
 * - `RPCNET_SEEDS`: comma-separated gossip `host:port`s (a DNS name may stand for several nodes).
 * - `RPCNET_TAGS`: `k=v,k=v` (default `role=worker`).
 * - `RPCNET_CA_FILE`: development CA written by `ca.ts` (`saveDevCa`), the same on every node.
 * - `RPCNET_SERVER_NAME`: cluster-wide TLS name (e.g. `rpcnet.cluster`).
 * - `RPCNET_SECRET`: RPC cluster secret. `RPCNET_GOSSIP_KEY`: base64 AES key (16 or 32 bytes).
 * - `RPCNET_LABEL`: cluster label. `RPCNET_PROFILE`: `LAN` (default), `WAN` or `LOCAL`.
 * - `RPCNET_READY_FILE`: file present while the node is ready (default `/tmp/rpcnet-ready`).
 * - `RPCNET_HTTP_PORT`: port of `/metrics`, `/healthz`, `/readyz` and the status page, bound on
 *   `RPCNET_BIND` (default 9464; `off` for none).
 *
 * @module
 */

import { Keyring, loadDevCa, Node, type Profile } from "../../mod.ts";

const env = (name: string) => Deno.env.get(name) || undefined;

function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const kv of text.split(",").filter(Boolean)) {
    const [k, v = ""] = kv.split("=");
    tags[k.trim()] = v.trim();
  }
  return tags;
}

const key = env("RPCNET_GOSSIP_KEY");
const caFile = env("RPCNET_CA_FILE");
const readyFile = env("RPCNET_READY_FILE") ?? "/tmp/rpcnet-ready";

const node = await Node.start({
  id: env("RPCNET_ID") ?? Deno.hostname(),
  bind: env("RPCNET_BIND") ?? "0.0.0.0",
  advertise: env("RPCNET_ADVERTISE"),
  rpcPort: Number(env("RPCNET_RPC_PORT") ?? 7373),
  gossipPort: Number(env("RPCNET_GOSSIP_PORT") ?? 7946),
  seeds: (env("RPCNET_SEEDS") ?? "").split(",").map((s) => s.trim()).filter(Boolean),
  tags: parseTags(env("RPCNET_TAGS") ?? "role=worker"),
  profile: (env("RPCNET_PROFILE") ?? "LAN") as Profile,
  label: env("RPCNET_LABEL"),
  secret: env("RPCNET_SECRET"),
  keyring: key ? new Keyring([Uint8Array.from(atob(key), (c) => c.charCodeAt(0))]) : undefined,
  devCa: caFile ? await loadDevCa(caFile) : undefined,
  serverName: env("RPCNET_SERVER_NAME"),
  handlers: {
    compute: (n) => (n as number) * 2,
  },
  http: env("RPCNET_HTTP_PORT") === "off" ? undefined : {
    port: Number(env("RPCNET_HTTP_PORT") ?? 9464),
    hostname: env("RPCNET_BIND") ?? "0.0.0.0",
  },
  leaveOnSignals: {
    // Not ready any more as soon as the leave starts, so no new traffic is routed here.
    onSignal: (signal) => {
      console.log(JSON.stringify({ event: "leaving", signal }));
      try {
        Deno.removeSync(readyFile);
      } catch { /* not there */ }
    },
  },
});

await node.whenReady();
await Deno.writeTextFile(readyFile, `${node.id}\n`);
console.log(
  JSON.stringify({ event: "ready", id: node.id, rpc: node.rpcAddr, gossip: node.gossipAddr }),
);

for await (const e of node.membership.subscribe()) {
  const who = "node" in e ? e.node.id : undefined;
  console.log(JSON.stringify({ event: e.type, node: who }));
}
