/**
 * Process lifecycle through the public API, in subprocesses: SIGTERM is a graceful leave (NodeLeft,
 * never NodeFailed; the call in flight completes; exit 0), and a Deno without `--unstable-net`
 * gets a `failed_precondition` error naming the flag.
 */
import assert from "node:assert/strict";
import { type ClusterEvent, createDevCa, Node, saveDevCa } from "../mod.ts";
import { waitFor } from "./_support/wait.ts";

const AGENT = new URL("./hosts/agent.ts", import.meta.url).pathname;

/** Reads lines from a child's stdout until one parses as JSON with a `ready` field. */
async function readyLine(
  child: Deno.ChildProcess,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      const { value, done } = await Promise.race([
        reader.read(),
        new Promise<{ value: undefined; done: true }>((r) =>
          setTimeout(() => r({ value: undefined, done: true }), Math.max(1, deadline - Date.now()))
        ),
      ]);
      if (done) break;
      buf += value;
      for (const line of buf.split("\n").slice(0, -1)) {
        try {
          const j = JSON.parse(line);
          if (typeof j === "object" && j !== null && "ready" in j) return j;
        } catch { /* not our line */ }
      }
    }
  } finally {
    reader.releaseLock();
  }
  throw new Error(`no ready line within ${timeoutMs} ms (got ${JSON.stringify(buf)})`);
}

Deno.test({
  name:
    "leaveOnSignals: SIGTERM is NodeLeft everywhere (never NodeFailed), drains the call in flight, exits 0",
  ignore: Deno.build.os === "windows",
  async fn() {
    const ca = await createDevCa();
    const dir = await Deno.makeTempDir();
    const caFile = `${dir}/ca.pem`;
    await saveDevCa(caFile, ca);
    const seed = await Node.start({ profile: "LOCAL", id: "seed", devCa: ca });
    const events: ClusterEvent[] = [];
    const sub = (async () => {
      for await (const e of seed.membership.subscribe()) events.push(e);
    })();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-net",
        AGENT,
        "--id",
        "term-worker",
        "--profile",
        "LOCAL",
        "--ca",
        caFile,
        "--seeds",
        seed.gossipAddr,
        "--work-ms",
        "1500",
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const ready = await readyLine(child, 60_000);
      assert.equal(ready.ready, true, JSON.stringify(ready));
      await waitFor(() => seed.registry.workers("role=worker").length === 1, "worker visible");
      const inFlight = seed.client.callWorker<{ worker: string }>("work", 1, {
        filter: "role=worker",
        timeoutMs: 10_000,
      });
      await new Promise((r) => setTimeout(r, 300)); // the call is now running in the worker
      child.kill("SIGTERM");
      const r = await inFlight;
      assert.equal(r.worker, "term-worker");
      const status = await child.status;
      assert.equal(status.code, 0);
      await waitFor(
        () => events.some((e) => e.type === "NodeLeft" && e.node.id === "term-worker"),
        "NodeLeft",
      );
      // Stay a while longer: a missed leave would turn into NodeFailed within a few seconds.
      await new Promise((r) => setTimeout(r, 3000));
      assert.ok(!events.some((e) => e.type === "NodeFailed"), JSON.stringify(events));
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await seed.stop();
      await sub;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("Node.start without --unstable-net: failed_precondition naming the flag", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A config with the package's imports but without `"unstable": ["net"]`.
    const config = JSON.parse(
      await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
    );
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify({ imports: config.imports }));
    const mod = new URL("../mod.ts", import.meta.url).href;
    const script = `${dir}/start.ts`;
    await Deno.writeTextFile(
      script,
      `import { Node, RpcError, RpcServer } from ${JSON.stringify(mod)};
const out: Record<string, string> = {};
for (const [what, f] of [
  ["node", () => Node.start()],
  ["server", () => new RpcServer().start()],
] as const) {
  try { await f(); out[what] = "started"; }
  catch (e) { out[what] = RpcError.is(e) ? e.code + ": " + e.message : "raw: " + e; }
}
console.log(JSON.stringify(out));
`,
    );
    const { stdout, stderr, code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", `${dir}/deno.json`, "--no-lock", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const out = JSON.parse(text.trim().split("\n").at(-1)!);
    for (const what of ["node", "server"]) {
      assert.match(out[what], /^failed_precondition: /, out[what]);
      assert.match(out[what], /--unstable-net/);
      assert.match(out[what], /"unstable": \["net"\]/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
