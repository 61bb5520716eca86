// The @grpc/grpc-js unary echo baseline for bench/rpc.ts: the peer a user would pick instead.
//   node grpc_echo.mjs bench <durationMs> <payloadBytes>   -> prints one JSON line
//   node grpc_echo.mjs serve                                -> prints the port, serves until killed
// TLS material comes from RPC_BENCH_CERT / RPC_BENCH_KEY / RPC_BENCH_CA (PEM), as for the Deno side.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import grpc from "@grpc/grpc-js";
import { unaryBytes } from "./grpc_identity.mjs";

const service = { echo: unaryBytes("/bench.Echo/Echo") };

function serve() {
  const server = new grpc.Server();
  server.addService(service, { echo: (call, cb) => cb(null, call.request) });
  const creds = grpc.ServerCredentials.createSsl(null, [{
    cert_chain: Buffer.from(process.env.RPC_BENCH_CERT),
    private_key: Buffer.from(process.env.RPC_BENCH_KEY),
  }], false);
  server.bindAsync("127.0.0.1:0", creds, (err, port) => {
    if (err) throw err;
    console.log(port);
  });
}

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

async function run(client, payload, inflight, durationMs, latencies) {
  let done = 0;
  const end = performance.now() + durationMs;
  const worker = () =>
    new Promise((resolve, reject) => {
      const next = () => {
        if (performance.now() >= end) return resolve();
        const t0 = performance.now();
        client.echo(payload, (err) => {
          if (err) return reject(err);
          if (latencies) latencies.push((performance.now() - t0) * 1000);
          done++;
          next();
        });
      };
      next();
    });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, worker));
  return done / ((performance.now() - t0) / 1000);
}

async function bench(durationMs, payloadBytes) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "serve"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: process.env,
  });
  const port = await new Promise((resolve, reject) => {
    let text = "";
    child.stdout.on("data", (d) => {
      text += d;
      if (text.includes("\n")) resolve(Number(text.trim()));
    });
    child.on("exit", () => reject(new Error("grpc server exited")));
  });
  const Client = grpc.makeGenericClientConstructor(service, "Echo");
  const client = new Client(
    `127.0.0.1:${port}`,
    grpc.credentials.createSsl(Buffer.from(process.env.RPC_BENCH_CA)),
    { "grpc.ssl_target_name_override": "localhost" },
  );
  const payload = Buffer.alloc(payloadBytes, 7);
  try {
    await run(client, payload, 8, Math.min(500, durationMs), null); // warm-up
    const lat = [];
    const rps1 = await run(client, payload, 1, durationMs, lat);
    const rps64 = await run(client, payload, 64, durationMs, null);
    const rps256 = await run(client, payload, 256, durationMs, null);
    console.log(JSON.stringify({
      rps1,
      p50us: quantile(lat, 0.5),
      p99us: quantile(lat, 0.99),
      rps64,
      rps256,
      node: process.version,
      version: JSON.parse(
        (await import("node:fs")).readFileSync(
          new URL("./node_modules/@grpc/grpc-js/package.json", import.meta.url),
        ),
      ).version,
    }));
  } finally {
    client.close();
    child.kill("SIGKILL");
  }
}

const [mode, a, b] = process.argv.slice(2);
if (mode === "serve") serve();
else await bench(Number(a ?? 2000), Number(b ?? 64));
process.exitCode = 0;
