/**
 * `deno task bench`: runs every bench section in one process run and prints one table.
 * `deno task bench -- rpc core` runs only the named sections.
 *
 * @module
 */
import { type BenchSection, renderTable } from "./table.ts";

type Section = { name: string; load: () => Promise<{ run: () => Promise<BenchSection> }> };

// Each entry is one bench file exporting `run()`. Sections are added as the areas land.
const SECTIONS: Section[] = [
  { name: "rpc", load: () => import("./rpc.ts") },
  { name: "core", load: () => import("./core.ts") },
  { name: "codec", load: () => import("./codec.ts") },
  { name: "sim", load: () => import("./sim.ts") },
  { name: "client", load: () => import("./client.ts") },
  { name: "fanout", load: () => import("./fanout.ts") },
  { name: "scale", load: () => import("./scale.ts") },
  { name: "lossy", load: () => import("./lossy.ts") },
  { name: "gossip", load: () => import("./gossip.ts") },
  { name: "observe", load: () => import("./observe.ts") },
];

const only = Deno.args.filter((a) => !a.startsWith("-"));
const results: BenchSection[] = [];
for (const s of SECTIONS) {
  if (only.length && !only.includes(s.name)) continue;
  console.error(`running bench section '${s.name}' …`);
  const mod = await s.load();
  results.push(await mod.run());
}
console.log(renderTable(results));
