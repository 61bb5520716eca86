import assert from "node:assert/strict";

Deno.test("shared core: garbage-collected detectors, balancers and sets give their memory back", async () => {
  const fixture = new URL("./_support/balance_gc_fixture.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", fixture],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const { sizes, agree } = JSON.parse(
    new TextDecoder().decode(out.stdout).trim().split("\n").pop()!,
  );
  assert.equal(agree, true, "the long-lived balancer diverged from the oracle");
  // Each round allocates ~60 MB of detector, balancer and bucket-table blocks; once they are
  // collected the next rounds reuse them, so the memory stops growing after the first round.
  assert.equal(sizes.length, 6);
  assert.ok(sizes[5] <= sizes[1], `core memory kept growing: ${sizes.join(", ")}`);
});
