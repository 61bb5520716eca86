/**
 * Creates what every node of a cluster shares: a development CA (PEM, file mode 0600), a gossip
 * key and an RPC secret. Copy the three to every host (or into a Kubernetes Secret).
 *
 * ```sh
 * deno run --allow-write --allow-read examples/deploy/ca.ts ./cluster-secrets
 * ```
 *
 * @module
 */

import { createDevCa, saveDevCa } from "../../mod.ts";

const dir = Deno.args[0] ?? "./cluster-secrets";
await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
await saveDevCa(`${dir}/ca.pem`, await createDevCa());
const b64 = (n: number) => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(n))));
await Deno.writeTextFile(`${dir}/gossip.key`, `${b64(32)}\n`, { mode: 0o600 });
await Deno.writeTextFile(`${dir}/rpc.secret`, `${b64(24)}\n`, { mode: 0o600 });
console.log(`wrote ${dir}/ca.pem, ${dir}/gossip.key, ${dir}/rpc.secret (mode 0600)`);
