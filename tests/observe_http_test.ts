/** Metrics, health endpoints and status JSON served by a node's HTTP port, on real sockets. */
import assert from "node:assert/strict";
import { createLogger, type LogRecord, Node, RpcError, silentLogger } from "../mod.ts";
import { startCluster, stopAll } from "./_support/client_helpers.ts";
import { waitFor } from "./_support/wait.ts";

// One Prometheus text line: comment, or `name{labels} value`.
const LINE =
  /^(# (HELP|TYPE) [a-z_:][a-z0-9_:]* .*|[a-z_:][a-z0-9_:]*(\{([a-z_][a-z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf))$/;

function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:][a-z0-9_:]*)(\{(.*)\})? (.*)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[3] ? m[3].split(/,(?=[a-z_]+=")/) : [];
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[4]);
  }
  return undefined;
}

async function get(url: string): Promise<{ status: number; text: string; type: string }> {
  const r = await fetch(url);
  return { status: r.status, text: await r.text(), type: r.headers.get("content-type") ?? "" };
}

Deno.test("observe: /metrics is valid Prometheus text with membership, server, client and per-method call metrics", async () => {
  const nodes = await startCluster([
    { id: "a", tags: { role: "director" } },
    { id: "b", tags: { role: "worker" } },
  ], {
    logger: silentLogger,
    http: { port: 0 },
    handlers: {
      fail: () => {
        throw new RpcError("not_found", "nothing here");
      },
    },
    serverStreams: {
      range: async function* (n) {
        for (let i = 0; i < (n as number); i++) yield i;
      },
    },
    clientStreams: {
      sum: async (requests) => {
        let total = 0;
        for await (const v of requests) total += v as number;
        return total;
      },
    },
  });
  try {
    const [a, b] = nodes;
    for (let i = 0; i < 5; i++) await a.client.callWorker("echo", i, { filter: "role=worker" });
    await assert.rejects(a.client.callWorker("fail", 0, { filter: "role=worker" }));
    // Streaming calls are counted when their handler ends (the unary interceptors miss them).
    for (let i = 0; i < 2; i++) {
      const got: unknown[] = [];
      for await (const v of a.client.serverStream("range", 3, { filter: "role=worker" })) {
        got.push(v);
      }
      assert.deepEqual(got, [0, 1, 2]);
    }
    const nums = async function* () {
      yield 1;
      yield 2;
    };
    assert.equal(await a.client.clientStream("sum", nums(), { filter: "role=worker" }), 3);
    // A join may go over TCP alone: wait for b's first gossip datagram both ways.
    await waitFor(
      () => b.membership.stats().bytesIn > 0 && b.membership.stats().packetsOut > 0,
      "a gossip datagram each way",
    );
    const wm = await get(`${b.observer!.url}/metrics`);
    assert.equal(wm.status, 200);
    assert.match(wm.type, /^text\/plain; version=0\.0\.4/);
    for (const line of wm.text.trimEnd().split("\n")) assert.match(line, LINE, line);
    // Server side (b): calls by method and code, latency histogram, members by state.
    assert.equal(
      sample(wm.text, "rpcnet_rpc_server_calls_total", { method: "echo", code: "ok" }),
      5,
    );
    assert.equal(
      sample(wm.text, "rpcnet_rpc_server_calls_total", { method: "fail", code: "not_found" }),
      1,
    );
    assert.equal(
      sample(wm.text, "rpcnet_rpc_server_call_duration_seconds_count", { method: "echo" }),
      5,
    );
    assert.equal(
      sample(wm.text, "rpcnet_rpc_server_call_duration_seconds_bucket", {
        method: "echo",
        le: "+Inf",
      }),
      5,
    );
    assert.equal(
      sample(wm.text, "rpcnet_rpc_server_calls_total", { method: "range", code: "ok" }),
      2,
    );
    assert.equal(
      sample(wm.text, "rpcnet_rpc_server_call_duration_seconds_count", { method: "range" }),
      2,
    );
    assert.equal(
      sample(wm.text, "rpcnet_rpc_server_calls_total", { method: "sum", code: "ok" }),
      1,
    );
    assert.equal(sample(wm.text, "rpcnet_members", { state: "alive" }), 2);
    assert.equal(sample(wm.text, "rpcnet_members", { state: "dead" }), 0);
    assert.ok(sample(wm.text, "rpcnet_gossip_bytes_total", { direction: "in" })! > 0);
    assert.ok(sample(wm.text, "rpcnet_gossip_datagrams_total", { direction: "out" })! > 0);
    assert.equal(sample(wm.text, "rpcnet_gossip_dropped_total", { reason: "auth" }), 0);
    assert.ok(sample(wm.text, "rpcnet_rpc_server_connections")! >= 1);
    assert.equal(sample(wm.text, "rpcnet_local_health_score"), 0);
    // Client side (a): calls by method and code, per-worker selections.
    const dm = await get(`${a.observer!.url}/metrics`);
    assert.equal(
      sample(dm.text, "rpcnet_rpc_client_calls_total", { method: "echo", code: "ok" }),
      5,
    );
    assert.equal(
      sample(dm.text, "rpcnet_rpc_client_calls_total", { method: "fail", code: "not_found" }),
      1,
    );
    // 6 unary calls and 3 streams.
    assert.equal(sample(dm.text, "rpcnet_client_worker_selections_total", { worker: "b" }), 9);
    assert.equal(sample(dm.text, "rpcnet_client_retries_total"), 0);
    assert.equal(sample(dm.text, "rpcnet_client_retry_budget_exhausted_total"), 0);
    assert.equal(sample(dm.text, "rpcnet_client_ejections_total"), 0);
    assert.equal(sample(dm.text, "rpcnet_client_in_flight"), 0);
    // Status JSON: every member, worker traffic, served methods.
    const st = JSON.parse((await get(`${a.observer!.url}/status`)).text);
    assert.deepEqual(st.members.map((m: { id: string }) => m.id), ["a", "b"]);
    assert.equal(st.workers[0].id, "b");
    assert.equal(st.workers[0].calls, 9);
    assert.equal((await get(`${a.observer!.url}/nope`)).status, 404);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("observe: /healthz and /readyz; readiness is false once the node leaves or its server drains", async () => {
  const nodes = await startCluster([
    { id: "a", tags: {} },
    { id: "b", tags: {} },
    { id: "c", tags: {} },
  ], { logger: silentLogger, http: { port: 0 } });
  try {
    const [, b, c] = nodes;
    for (const n of nodes) {
      assert.equal((await get(`${n.observer!.url}/healthz`)).status, 200);
      assert.equal((await get(`${n.observer!.url}/readyz`)).status, 200);
    }
    // Leaving membership (the first step of node.leave()): not ready, still alive.
    await b.membership.leave(200);
    assert.equal((await get(`${b.observer!.url}/readyz`)).status, 503);
    assert.equal((await get(`${b.observer!.url}/healthz`)).status, 200);
    // Draining the RPC server: not ready.
    const closing = c.server.close();
    assert.equal((await get(`${c.observer!.url}/readyz`)).status, 503);
    await closing;
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("observe: the http option is checked and names the option", async () => {
  await assert.rejects(
    Node.start({ profile: "LOCAL", logger: silentLogger, http: { port: 70000 } }),
    (e) => RpcError.is(e, "invalid_argument") && /http\.port/.test(e.message),
  );
  const a = await Node.start({ profile: "LOCAL", logger: silentLogger, http: { port: 0 } });
  try {
    await assert.rejects(
      Node.start({ profile: "LOCAL", logger: silentLogger, http: { port: a.observer!.addr.port } }),
      (e) => RpcError.is(e, "invalid_argument") && /http: cannot listen/.test(e.message),
    );
  } finally {
    await a.stop();
  }
});

Deno.test("observe: a node logs member failures and handler errors through its logger", async () => {
  const records: LogRecord[] = [];
  const logger = createLogger((r) => records.push(r), "info");
  const nodes = await startCluster([
    { id: "a", tags: {} },
    { id: "b", tags: { role: "worker" } },
  ], {
    logger,
    handlers: {
      boom: () => {
        throw new TypeError("kaboom");
      },
    },
  });
  try {
    const [a, b] = nodes;
    assert.ok(records.some((r) => r.msg === "member joined" && r.fields.member === "b"));
    await assert.rejects(
      a.client.callWorker("boom", 0, { filter: "role=worker" }),
      (e) => RpcError.is(e, "internal"),
    );
    await waitFor(() => records.some((r) => r.msg === "handler threw"), "handler error logged");
    const rec = records.find((r) => r.msg === "handler threw")!;
    assert.equal(rec.level, "error");
    assert.equal(rec.fields.method, "boom");
    assert.equal(rec.fields.error, "kaboom");
    await b.stop();
    await waitFor(
      () => records.some((r) => r.msg === "member failed" && r.fields.member === "b"),
      "b's failure logged",
    );
    assert.equal(records.find((r) => r.msg === "member failed")!.level, "warn");
  } finally {
    await stopAll(nodes);
  }
});
