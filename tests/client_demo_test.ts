import assert from "node:assert/strict";

Deno.test("deno task demo: membership forms, a SIGKILLed worker fails over with zero failed calls, it rejoins, exit 0", async () => {
  const script = new URL("../examples/demo.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script, "--phase-ms", "1500"],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(90_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `demo failed:\n${text}\n${err}`);
  assert.ok(!text.includes("\x1b["), "no ANSI escapes when stdout is not a terminal");
  assert.match(text, /NodeJoined\s+w1/);
  assert.match(text, /NodeFailed\s+w2/);
  assert.match(text, /failed idempotent calls\s+0\n/);
  assert.match(text, /w2 is back .* and serving/);
  const row = text.match(/^\| w2 +\| +(\d+) \| +(\d+) \| +(\d+) \|/m);
  assert.ok(row, "summary row for w2");
  assert.equal(Number(row[2]), 0, "no call reached w2 while it was dead");
  assert.ok(Number(row[3]) > 0, "w2 served calls after it rejoined");
});
