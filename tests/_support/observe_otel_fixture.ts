/**
 * Child process of observe_otel_test.ts: two nodes with call metrics and tracing, a few calls
 * through a Director-style forward, then exits (Deno's OpenTelemetry flushes at exit).
 */
import { Director, Node, RpcClient, serverTracing, silentLogger } from "../../mod.ts";

const worker = await Node.start({
  id: "w",
  profile: "LOCAL",
  tags: { role: "worker" },
  logger: silentLogger,
  http: { port: 0, tracing: true },
  handlers: { echo: (req) => req },
});
const director = await Node.start({
  id: "d",
  profile: "LOCAL",
  seeds: [worker.gossipAddr],
  logger: silentLogger,
  http: { port: 0, tracing: true },
});
const front = await Director.start({ client: director.client, methods: ["echo"] });
while (director.nodes.alive().length < 2) await new Promise((r) => setTimeout(r, 20));
for (let i = 0; i < 3; i++) await director.client.callWorker("echo", i, { filter: "role=worker" });
// Through the Director, from a caller outside the cluster that sends its own traceparent.
front.server.use(serverTracing());
const caller = await RpcClient.connect({ hostname: "127.0.0.1", port: front.addr.port });
await caller.call("echo", "via-director", {
  meta: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
});
await caller.close();
// Let at least one periodic export run with the instruments observed.
await new Promise((r) => setTimeout(r, 600));
await front.close();
await director.stop();
await worker.stop();
console.log("done");
