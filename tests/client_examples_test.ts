import assert from "node:assert/strict";

for (const name of ["coordinator_worker", "peer_to_peer", "hierarchical"]) {
  Deno.test(`examples/${name}.ts runs to completion and exits 0`, async () => {
    const script = new URL(`../examples/${name}.ts`, import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", script],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, `${name} failed:\n${text}\n${new TextDecoder().decode(out.stderr)}`);
    assert.match(text, /done\n$/);
  });
}
