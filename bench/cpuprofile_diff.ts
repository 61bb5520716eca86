/**
 * Compares two V8 CPU profiles (`--cpu-prof`) per call: each function's self time divided by the
 * calls its run made, side by side, sorted by how much more the second spends. The per-item
 * figures in `docs/performance.md` ("what is ours") come from this, on the caller profiles of
 * `bench/fanout_profile.ts rawtls3` and `cluster3tcp` with their `calls`.
 *
 * ```sh
 * deno run -A bench/fanout_profile.ts rawtls3 --rounds 6 --cpu-prof --prof-dir /tmp/a
 * deno run -A bench/fanout_profile.ts cluster3tcp --rounds 6 --cpu-prof --prof-dir /tmp/b
 * deno run -A bench/cpuprofile_diff.ts /tmp/a/CPU.*.cpuprofile CALLS_A /tmp/b/CPU.*.cpuprofile CALLS_B
 * ```
 *
 * Samples are wall time on the profiled thread: time the process waited for a core while inside
 * a function counts as that function's (on 2 busy cores, mostly the write op).
 *
 * @module
 */

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function, µs per call; idle samples left out. */
export function selfPerCall(profile: CpuProfile, calls: number): Map<string, number> {
  const names = new Map<number, string>();
  for (const n of profile.nodes) {
    const f = n.callFrame;
    const file = f.url.split("/").pop() ?? "";
    names.set(n.id, `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`);
  }
  const out = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const name = names.get(id)!;
    if (name.startsWith("(idle)")) return;
    out.set(name, (out.get(name) ?? 0) + profile.timeDeltas[i] / calls);
  });
  return out;
}

if (import.meta.main) {
  const [pathA, callsA, pathB, callsB, top = "30"] = Deno.args;
  if (!pathB || !(Number(callsA) > 0) || !(Number(callsB) > 0)) {
    console.error("usage: cpuprofile_diff.ts PROFILE_A CALLS_A PROFILE_B CALLS_B [TOP]");
    Deno.exit(2);
  }
  const read = async (p: string, calls: string) =>
    selfPerCall(JSON.parse(await Deno.readTextFile(p)) as CpuProfile, Number(calls));
  const a = await read(pathA, callsA), b = await read(pathB, callsB);
  const sum = (m: Map<string, number>) => [...m.values()].reduce((x, y) => x + y, 0);
  console.log(`busy µs per call: A ${sum(a).toFixed(2)}, B ${sum(b).toFixed(2)}`);
  const rows = [...new Set([...a.keys(), ...b.keys()])]
    .map((k) => ({ k, a: a.get(k) ?? 0, b: b.get(k) ?? 0 }))
    .sort((x, y) => (y.b - y.a) - (x.b - x.a))
    .slice(0, Number(top));
  for (const r of rows) {
    console.log(
      `${(r.b - r.a >= 0 ? "+" : "") + (r.b - r.a).toFixed(2)}  ${r.a.toFixed(2)}  ` +
        `${r.b.toFixed(2)}  ${r.k}`,
    );
  }
}
