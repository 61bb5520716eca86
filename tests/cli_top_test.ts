/**
 * `rpcnet top` driven in a real terminal: tmux runs it, send-keys presses q, capture-pane reads
 * the screen. Two agents; this test process loads one worker through a plain RpcClient.
 */
import assert from "node:assert/strict";
import { RpcClient } from "../mod.ts";
import { Agent, agentArgs, HANDLERS, MAIN, makeCa } from "./_support/cli_helpers.ts";

const hasTmux = (() => {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

// An isolated tmux server for this test process.
const SOCKET = `rpcnet-cli-test-${Deno.pid}`;

async function tmux(...args: string[]): Promise<string> {
  const out = await new Deno.Command("tmux", {
    args: ["-L", SOCKET, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`tmux ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function screenUntil(pred: (screen: string) => boolean, what: string): Promise<string> {
  const until = Date.now() + 20_000;
  let screen = "";
  while (Date.now() < until) {
    screen = await tmux("capture-pane", "-p", "-t", "top");
    if (pred(screen)) return screen;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; the screen:\n${screen}`);
}

Deno.test({
  name: "rpcnet top: members and a non-zero call rate under load, redrawn in place; q quits",
  ignore: !hasTmux,
  fn: async () => {
    const { dir, ca } = await makeCa();
    const agents: Agent[] = [];
    let client: RpcClient | undefined;
    const stopLoad = new AbortController();
    let load: Promise<number> | undefined;
    try {
      const seed = await Agent.start(agentArgs("seed", ca));
      agents.push(seed);
      const worker = await Agent.start(
        agentArgs("worker-1", ca, ["--handlers", HANDLERS, "--tag", "role=worker"]),
        { RPCNET_SEEDS: seed.started.gossipAddr },
      );
      agents.push(worker);
      const [hostname, port] = worker.started.rpcAddr.split(":");
      client = await RpcClient.connect({
        hostname,
        port: Number(port),
        caCerts: [await Deno.readTextFile(ca)],
      });
      const c = client;
      load = (async () => {
        let calls = 0;
        while (!stopLoad.signal.aborted) {
          await c.call("slow", { ms: 2 });
          calls++;
        }
        return calls;
      })();

      const exitFile = `${dir}/top.exit`;
      const command = `NO_COLOR=1 '${Deno.execPath()}' run -A --quiet '${MAIN}' top ` +
        `--addr ${seed.started.rpcAddr} --ca '${ca}'; echo "exit=$?" > '${exitFile}'`;
      await tmux("new-session", "-d", "-s", "top", "-x", "140", "-y", "30", command);

      const screen = await screenUntil((s) => {
        const row = s.split("\n").find((l) => l.startsWith("worker-1"));
        const rate = row?.split(/\s+/)[4];
        return rate !== undefined && Number(rate) > 0;
      }, "a non-zero calls/s for worker-1");
      const lines = screen.split("\n");
      assert.match(lines[0], /^rpcnet top — 127\.0\.0\.1:\d+ — 2 members, 2 live/);
      assert.match(screen, /NODE\s+STATE\s+PHI\s+RPC\s+CALLS\/S\s+P50\s+P99\s+ERR\/S\s+INFLIGHT/);
      assert.match(screen, /\nseed\s+alive\s/);
      const row = lines.find((l) => l.startsWith("worker-1"))!.split(/\s+/);
      assert.equal(row[1], "alive");
      assert.match(row[5], /ms$/); // p50
      assert.match(row[6], /ms$/); // p99
      assert.equal(row[7], "0.0"); // errors/s
      // Redrawn in place: one header on the screen, however many refreshes happened.
      assert.equal(screen.split("rpcnet top —").length - 1, 1);

      await tmux("send-keys", "-t", "top", "q");
      const until = Date.now() + 10_000;
      let exit: string | undefined;
      while (Date.now() < until && exit === undefined) {
        exit = await Deno.readTextFile(exitFile).catch(() => undefined);
        if (exit === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(exit?.trim(), "exit=0");
    } finally {
      stopLoad.abort();
      await load?.catch(() => 0);
      await client?.close();
      await tmux("kill-server").catch(() => "");
      await Promise.all(agents.map((a) => a.stop("SIGKILL")));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
