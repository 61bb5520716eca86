import assert from "node:assert/strict";

interface Scavenge {
  allocated: number;
  survived: number;
  pause: number;
}

/** Young-generation GCs from V8's `--trace-gc-nvp` output. */
function scavenges(trace: string): Scavenge[] {
  const out: Scavenge[] = [];
  for (const m of trace.matchAll(/GC: (\{[^\n]*\})/g)) {
    let d: Record<string, unknown>;
    try {
      d = JSON.parse(m[1]);
    } catch {
      continue; // a line cut by other output
    }
    if (d.gc !== "s") continue;
    out.push({
      allocated: Number(d.allocated),
      survived: Number(d.new_space_survived),
      pause: Number(d.pause),
    });
  }
  return out;
}

// Issue 14: the connection's table of calls in flight was a `Map` keyed by ever-increasing ids.
// V8 rebuilds such a map's hash table every few dozen calls and links each retired table to the
// next, so once one table was promoted, every later one (and the calls it pointed to) survived the
// young-generation GCs: 20–25 % of what a caller allocated survived each scavenge, and scavenges
// took 10–20 ms. With the slot table (src/rpc/call_table.ts) under 1 % survives.
Deno.test("rpc GC: calls in flight do not survive young-generation GCs (client and async server)", async () => {
  const fixture = new URL("./_support/rpc_gc_fixture.ts", import.meta.url).pathname;
  const config = new URL("../deno.json", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", config, "--v8-flags=--trace-gc-nvp", fixture, "2500"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, err);
  const { calls } = JSON.parse(err.trim().split("\n").at(-1)!);
  const all = scavenges(new TextDecoder().decode(out.stdout));
  // The first third is start-up and warm-up (module loading, the young generation growing).
  const steady = all.slice(Math.floor(all.length / 3));
  assert.ok(steady.length >= 4, `only ${all.length} scavenges in ${calls} calls`);
  const allocated = steady.reduce((a, s) => a + s.allocated, 0);
  const survived = steady.reduce((a, s) => a + s.survived, 0);
  const share = survived / allocated;
  const pauses = steady.map((s) => s.pause).sort((a, b) => a - b);
  console.log(
    `${calls} calls, ${steady.length} steady scavenges: ${(share * 100).toFixed(2)} % survived, ` +
      `pause p50 ${pauses[pauses.length >> 1].toFixed(2)} ms`,
  );
  assert.ok(share < 0.05, `${(share * 100).toFixed(1)} % of allocations survived scavenges`);
});
