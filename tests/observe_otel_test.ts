/**
 * Deno's built-in OpenTelemetry (`OTEL_DENO=true`) exports the package's instruments and spans
 * with no user code: a child process runs two nodes while this test is its OTLP/HTTP (JSON)
 * receiver on loopback.
 */
import assert from "node:assert/strict";

interface Received {
  metrics: string[];
  spans: { name: string; traceId: string; spanId: string; parentSpanId: string; kind: number }[];
}

async function runWithReceiver(): Promise<Received> {
  const got: Received = { metrics: [], spans: [] };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const body = await req.json();
    if (path === "/v1/metrics") {
      for (const rm of body.resourceMetrics ?? []) {
        for (const sm of rm.scopeMetrics ?? []) {
          for (const m of sm.metrics ?? []) got.metrics.push(m.name);
        }
      }
    } else if (path === "/v1/traces") {
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) got.spans.push(s);
        }
      }
    }
    return Response.json({});
  });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./_support/observe_otel_fixture.ts", import.meta.url).pathname],
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${server.addr.port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_METRIC_EXPORT_INTERVAL: "200",
        OTEL_SERVICE_NAME: "rpcnet-otel-test",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(new TextDecoder().decode(out.stdout), /done/);
    return got;
  } finally {
    await server.shutdown();
  }
}

Deno.test("OTEL_DENO=true exports rpcnet metrics and linked spans over OTLP to a loopback receiver", async () => {
  const got = await runWithReceiver();
  for (
    const name of [
      "rpcnet_members",
      "rpcnet_gossip_bytes_total",
      "rpcnet_gossip_dropped_total",
      "rpcnet_local_health_score",
      "rpcnet_rpc_server_connections",
      "rpcnet_client_worker_selections_total",
      "rpcnet_rpc_server_call_duration_seconds",
      "rpcnet_rpc_client_call_duration_seconds",
    ]
  ) {
    assert.ok(got.metrics.includes(name), `${name} exported; got ${[...new Set(got.metrics)]}`);
  }
  // Each client span's child is a server span of the same trace (traceparent in metadata).
  const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  const direct = got.spans.filter((s) => s.traceId !== TRACE);
  const clients = direct.filter((s) => s.name === "rpcnet.client/echo");
  const servers = direct.filter((s) => s.name === "rpcnet.server/echo");
  assert.equal(clients.length, 3);
  assert.equal(servers.length, 3);
  // caller (span 00f067aa0ba902b7) → director server span → director client span → worker
  // server span, all in the caller's trace.
  const viaDirector = got.spans.filter((s) => s.traceId === TRACE);
  assert.equal(viaDirector.length, 3, JSON.stringify(viaDirector));
  const dServer = viaDirector.find((s) => s.parentSpanId === "00f067aa0ba902b7");
  assert.equal(dServer?.name, "rpcnet.server/echo");
  const dClient = viaDirector.find((s) => s.parentSpanId === dServer.spanId);
  assert.equal(dClient?.name, "rpcnet.client/echo");
  const wServer = viaDirector.find((s) => s.parentSpanId === dClient.spanId);
  assert.equal(wServer?.name, "rpcnet.server/echo");
  for (const c of clients) {
    const child = servers.find((s) => s.parentSpanId === c.spanId);
    assert.ok(child, `a server span under client span ${c.spanId}`);
    assert.equal(child.traceId, c.traceId);
  }
});
