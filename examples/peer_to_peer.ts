/**
 * Peer-to-peer: every node is both client and server. Here three peers form a tiny distributed
 * key-value cache: each key lives on the peer that rendezvous hashing picks, and because every
 * peer sees the same membership, every peer routes a key to the same owner.
 *
 * ```sh
 * deno run -A examples/peer_to_peer.ts
 * ```
 *
 * @module
 */
import { Node } from "../mod.ts";

const ids = ["peer-a", "peer-b", "peer-c"];
const peers: Node[] = [];
for (const id of ids) {
  const store = new Map<string, unknown>();
  peers.push(
    await Node.start({
      id,
      profile: "LOCAL",
      tags: { role: "peer" },
      strategy: "consistent_hash",
      seeds: peers.length ? [peers[0].gossipAddr] : [],
      handlers: {
        put: (req) => {
          const { key, value } = req as { key: string; value: unknown };
          store.set(key, value);
          return { owner: id };
        },
        get: (req) => ({ owner: id, value: store.get((req as { key: string }).key) ?? null }),
      },
    }),
  );
}
while (!peers.every((p) => p.registry.workers("role=peer").length === 3)) {
  await new Promise((r) => setTimeout(r, 20));
}

// Any peer writes; the key decides the owner (the `key` option drives consistent hashing).
const put = (from: Node, key: string, value: unknown) =>
  from.client.callWorker<{ owner: string }>("put", { key, value }, {
    filter: "role=peer",
    key,
    idempotent: true,
  });
const get = (from: Node, key: string) =>
  from.client.callWorker<{ owner: string; value: unknown }>("get", { key }, {
    filter: "role=peer",
    key,
    idempotent: true,
  });

for (let i = 0; i < 6; i++) {
  const key = `user:${i}`;
  const writer = peers[i % 3];
  const reader = peers[(i + 1) % 3];
  const w = await put(writer, key, { visits: i });
  const r = await get(reader, key);
  console.log(
    `${key}: written by ${writer.id} to ${w.owner}, read by ${reader.id} from ${r.owner} ->`,
    r.value,
  );
  if (w.owner !== r.owner || (r.value as { visits: number }).visits !== i) {
    throw new Error("peers disagree on the owner");
  }
}

await Promise.all(peers.map((p) => p.leave()));
console.log("done");
