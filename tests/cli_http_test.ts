/**
 * `rpcnet agent --http`: the agent serves /metrics, /healthz, /readyz and the status page, and
 * the node's own warnings come out as JSON lines on the agent's log stream.
 */
import assert from "node:assert/strict";
import { Agent, agentArgs, HANDLERS, makeCa, rpcnet } from "./_support/cli_helpers.ts";

Deno.test("rpcnet agent --http: /metrics, /healthz, /readyz, status page; node warnings as JSON lines", async () => {
  const { dir, ca } = await makeCa();
  const agent = await Agent.start(
    agentArgs("obs", ca, ["--http", "0", "--handlers", HANDLERS]),
    { RPCNET_SECRET: "s3cret-value" },
  );
  try {
    const base = agent.started.http as string;
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/, JSON.stringify(agent.started));
    const look = { RPCNET_ADDR: agent.started.rpcAddr, RPCNET_CA: ca };

    const call = await rpcnet(["call", "compute", '{"n": 3}'], {
      ...look,
      RPCNET_SECRET: "s3cret-value",
    });
    assert.equal(call.code, 0, call.stderr);

    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200, await ready.text());

    const metrics = await fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get("content-type") ?? "", /text\/plain/);
    const text = await metrics.text();
    assert.match(text, /^rpcnet_members\{state="alive"\} 1$/m);
    assert.match(text, /^rpcnet_rpc_server_calls_total\{method="compute",code="ok"\} 1$/m);

    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);

    // A wrong secret: the node's own warning, a JSON line on the agent's stdout.
    const wrong = await rpcnet(["members", "--secret", "not-it"], look);
    assert.equal(wrong.code, 1);
    await agent.waitFor(
      () => agent.log.some((l) => l.msg === "rpc authentication failed"),
      "the node's authentication warning as a JSON line",
    );
    const warn = agent.log.find((l) => l.msg === "rpc authentication failed")!;
    assert.equal(warn.level, "warn");
    assert.equal(typeof warn.ts, "string");
  } finally {
    await agent.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rpcnet agent: RPCNET_HTTP serves /readyz; a bad --http is a usage error", async () => {
  const { dir, ca } = await makeCa();
  const agent = await Agent.start(agentArgs("obs-env", ca), { RPCNET_HTTP: "127.0.0.1:0" });
  try {
    const base = agent.started.http as string;
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
  } finally {
    await agent.stop("SIGKILL");
  }
  try {
    const bad = await rpcnet(["agent", ...agentArgs("bad", ca, ["--http", "127.0.0.1"])]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--http must be PORT or HOST:PORT/);
    const badPort = await rpcnet(["agent", ...agentArgs("bad", ca, ["--http", ":99999"])]);
    assert.equal(badPort.code, 2, badPort.stderr);
    assert.match(badPort.stderr, /--http must be a port/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
