// Node side of the bench section "fanout": one caller fanning calls out over N worker processes,
// for moleculer 0.14 (TCP transporter) and @grpc/grpc-js (round robin over N servers). The Deno
// orchestrator keeps one driver alive per system and drives it round by round, so that every
// system's rounds interleave with ours and ratios can be taken per round.
//
//   node fanout_driver.mjs <moleculer|grpc> --workers N [--capacity C] [--hold-ms H]
//
// The driver process is the caller; it spawns N workers (`node fanout_driver.mjs <system>-worker
// ...`), each its own OS process. Protocol, one JSON object per line:
//   stdout, once every worker has answered a hold call:
//     {"ready":true,"system":..,"callerPid":..,"workerPids":[w0..],"version":..,"node":..,
//      "workersUpMs":..,"startupMs":..}   (ms from the driver's process start: all workers
//     reported / ready; the gap is discovery and connection set-up)
//   stdin {"run":"echo"|"hold","inFlight":K,"ms":T} -> K independent call loops for T ms, then the
//     outstanding calls are awaited; reply {"done","seconds","rate","p50us","p99us","errors"} plus
//     "perWorker":{"<workerId>":calls} for "hold" (the hold reply names the worker that served it).
//   stdin {"quit":true} -> reply {"quit":true}, workers killed, exit 0. Stdin EOF: the same, but
//     without a reply.
//   A malformed command gets {"error":"..."}; a worker dying unexpectedly ends the driver (exit 1).
// grpc needs TLS material in RPC_BENCH_CERT / RPC_BENCH_KEY / RPC_BENCH_CA (PEM), as grpc_echo.mjs.
//
// "echo" sends 64 B: a 64 B Buffer for grpc; for moleculer the params object { s: "x" × 64 }
// (64 characters of payload; moleculer's JSON envelope adds its own framing, as in real use).
// "hold" models a worker of bounded capacity that waits rather than computes: at most C calls run
// at once per worker process, the rest queue FIFO in the worker, each running call holds a
// setTimeout(H ms) and then returns the worker's id.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { unaryBytes } from "./grpc_identity.mjs";

const SELF = fileURLToPath(import.meta.url);
const ECHO_STRING = "x".repeat(64);
const ECHO_BYTES = Buffer.alloc(64, 7);
/** How long startup (workers up, discovered, each answering once) may take before giving up. */
const STARTUP_TIMEOUT_MS = 120_000;

function packageVersion(name) {
  const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")).version;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Nearest-rank quantile, the same definition as grpc_echo.mjs and the Deno side. */
function quantile(sorted, q) {
  if (sorted.length === 0) return 0;
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  ];
}

// ---------------------------------------------------------------- worker side (both systems)

/** The bounded, waiting worker: returns hold(), which resolves after its turn plus holdMs. */
function boundedHold(capacity, holdMs) {
  let running = 0;
  const queue = [];
  const start = (resolve) => {
    running++;
    setTimeout(() => {
      running--;
      // Hand the freed slot to the oldest waiter before resolving, so that the queue is FIFO.
      const next = queue.shift();
      if (next) start(next);
      resolve();
    }, holdMs);
  };
  return () => new Promise((resolve) => running < capacity ? start(resolve) : queue.push(resolve));
}

/**
 * A worker must never outlive its driver: the driver holds the only write end of the worker's
 * stdin, so EOF there means the driver is gone (even after SIGKILL); the ppid check is a backstop.
 */
function dieWithParent() {
  const parent = process.ppid;
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("close", () => process.exit(0));
  process.stdin.resume();
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 250).unref();
}

/** The worker's one line to the driver: who it is and where it listens. */
function reportWorkerReady(id, port) {
  process.stdout.write(JSON.stringify({ id, pid: process.pid, port }) + "\n");
}

function workerOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      id: { type: "string" },
      urls: { type: "string" },
      capacity: { type: "string" },
      "hold-ms": { type: "string" },
    },
  });
  return {
    id: values.id,
    urls: values.urls,
    hold: boundedHold(Number(values.capacity), Number(values["hold-ms"])),
  };
}

// ---------------------------------------------------------------- moleculer

async function loadMoleculer() {
  return (await import("moleculer")).default;
}

/**
 * One broker per process. Every node gets the same static `urls` list (caller and all workers,
 * `host:port/nodeID`); each takes its own port from it. Discovery is moleculer's TCP gossip (pull
 * only, one request per second at the fastest), so every node knowing every address lets the
 * caller learn all workers from any one of them instead of contacting each in turn.
 */
function moleculerBrokerOptions(nodeID, urls) {
  return {
    nodeID,
    transporter: {
      type: "TCP",
      options: { udpDiscovery: false, urls, gossipPeriod: 1 },
    },
    // Default strategy (RoundRobin) and serializer (JSON); nothing observing the calls.
    logger: false,
    metrics: false,
    tracing: false,
    // The driver owns process lifetime (signals, killing workers), not the broker.
    skipProcessEventRegistration: true,
  };
}

async function moleculerWorker(argv) {
  dieWithParent();
  const opts = workerOptions(argv);
  const { ServiceBroker } = await loadMoleculer();
  const broker = new ServiceBroker(
    moleculerBrokerOptions(opts.id, opts.urls.split(",")),
  );
  broker.createService({
    name: "bench",
    actions: {
      echo: (ctx) => ctx.params,
      hold: async () => {
        await opts.hold();
        return opts.id;
      },
    },
  });
  await broker.start();
  reportWorkerReady(opts.id, broker.registry.nodes.localNode.port);
}

/**
 * N distinct free loopback ports: all are held open at once (so they differ), then released for
 * the brokers, which must know every address before they start. A port taken in between makes a
 * worker fail to listen, which ends the driver loudly rather than measuring something else.
 */
async function freePorts(n) {
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => resolve(server));
      })),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(
    servers.map((s) => new Promise((resolve) => s.close(resolve))),
  );
  return ports;
}

async function moleculerCaller(config, fleet) {
  const { ServiceBroker } = await loadMoleculer();
  const ports = await freePorts(config.workers + 1);
  const ids = Array.from({ length: config.workers }, (_, i) => `w${i}`);
  const urls = [
    `127.0.0.1:${ports[0]}/caller`,
    ...ids.map((id, i) => `127.0.0.1:${ports[i + 1]}/${id}`),
  ];
  const workerArgs = (id) => ["moleculer-worker", "--id", id, "--urls", urls.join(",")];
  const started = fleet.spawnAll(ids.map((id) => [...workerArgs(id), ...config.holdArgs]));
  started.catch(() => {}); // its rejection is handled when awaited below, after broker.start
  const broker = new ServiceBroker(moleculerBrokerOptions("caller", urls));
  await broker.start();
  await started;
  await broker.waitForServices("bench", STARTUP_TIMEOUT_MS);
  // waitForServices is satisfied by one node; the round must start with all N in the balancer.
  const deadline = performance.now() + STARTUP_TIMEOUT_MS;
  const available = () => {
    const list = broker.registry.getActionEndpoints("bench.hold");
    return list ? list.endpoints.filter((ep) => ep.isAvailable).length : 0;
  };
  while (available() < config.workers) {
    if (performance.now() > deadline) {
      throw new Error(`only ${available()} workers discovered`);
    }
    await sleep(20);
  }
  const echoParams = { s: ECHO_STRING };
  return {
    version: packageVersion("moleculer"),
    echo: () => broker.call("bench.echo", echoParams),
    hold: () => broker.call("bench.hold"),
    close: () => broker.stop(),
  };
}

// ---------------------------------------------------------------- grpc

const GRPC_SERVICE = {
  echo: unaryBytes("/bench.Fanout/Echo"),
  hold: unaryBytes("/bench.Fanout/Hold"),
};

function tlsEnv(name) {
  const pem = process.env[name];
  if (!pem) throw new Error(`${name} (PEM) is not set`);
  return Buffer.from(pem);
}

async function grpcWorker(argv) {
  dieWithParent();
  const opts = workerOptions(argv);
  const grpc = (await import("@grpc/grpc-js")).default;
  const reply = Buffer.from(opts.id);
  const server = new grpc.Server();
  server.addService(GRPC_SERVICE, {
    echo: (call, cb) => cb(null, call.request),
    hold: (_call, cb) => opts.hold().then(() => cb(null, reply)),
  });
  const creds = grpc.ServerCredentials.createSsl(null, [{
    cert_chain: tlsEnv("RPC_BENCH_CERT"),
    private_key: tlsEnv("RPC_BENCH_KEY"),
  }], false);
  const port = await new Promise((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      creds,
      (err, p) => err ? reject(err) : resolve(p),
    )
  );
  reportWorkerReady(opts.id, port);
}

async function grpcCaller(config, fleet) {
  const grpc = (await import("@grpc/grpc-js")).default;
  const ids = Array.from({ length: config.workers }, (_, i) => `w${i}`);
  const workers = await fleet.spawnAll(
    ids.map((id) => ["grpc-worker", "--id", id, ...config.holdArgs]),
  );
  // One channel over all N addresses; round_robin keeps a subchannel per address and rotates.
  const target = `ipv4:${workers.map((w) => `127.0.0.1:${w.port}`).join(",")}`;
  const Client = grpc.makeGenericClientConstructor(GRPC_SERVICE, "Fanout");
  const client = new Client(
    target,
    grpc.credentials.createSsl(tlsEnv("RPC_BENCH_CA")),
    {
      "grpc.ssl_target_name_override": "localhost",
      "grpc.service_config": JSON.stringify({
        loadBalancingConfig: [{ round_robin: {} }],
      }),
    },
  );
  const unaryCall = (method, payload) =>
    new Promise((resolve, reject) =>
      client[method](payload, (err, res) => err ? reject(err) : resolve(res))
    );
  return {
    version: packageVersion("@grpc/grpc-js"),
    echo: () => unaryCall("echo", ECHO_BYTES),
    hold: () => unaryCall("hold", ECHO_BYTES).then((b) => b.toString()),
    close: () => client.close(),
  };
}

// ---------------------------------------------------------------- driver (the caller)

/** The worker processes: spawned, awaited until each reports, and killed on every way out. */
function workerFleet(system) {
  const children = [];
  let stopping = false;
  let upMs; // when the last worker reported: the process share of startup, the rest is discovery
  const spawnOne = (args) =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [SELF, ...args], {
        stdio: ["pipe", "pipe", "inherit"],
        env: process.env,
      });
      children.push(child);
      child.once("exit", (code, signal) => {
        const why = `${system} worker ${child.pid} exited (${signal ?? code})`;
        reject(new Error(why));
        if (stopping) return;
        // A round with a worker missing measures something else: end the whole driver.
        process.stderr.write(`fanout_driver: ${why}\n`);
        stopAll().then(() => process.exit(1));
      });
      readline.createInterface({ input: child.stdout }).once("line", (line) => {
        resolve(JSON.parse(line));
      });
    });
  const stopAll = async () => {
    stopping = true;
    await Promise.all(
      children.map((child) =>
        child.exitCode !== null || child.signalCode !== null
          ? undefined
          : new Promise((resolve) => {
            child.once("exit", resolve);
            child.kill("SIGKILL");
          })
      ),
    );
  };
  return {
    pids: () => children.map((c) => c.pid),
    spawnAll: async (argLists) => {
      const workers = await Promise.all(argLists.map(spawnOne));
      upMs = Math.round(performance.now());
      return workers;
    },
    upMs: () => upMs,
    stopAll,
  };
}

/**
 * Keeps inFlight calls outstanding for ms, then lets the outstanding ones finish. Latency is
 * measured around every call; perWorker counts the id a hold call returns.
 */
async function runLoad(call, inFlight, ms, countWorkers) {
  const latencies = [];
  const perWorker = {};
  let done = 0;
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  const loop = async () => {
    while (performance.now() < end) {
      const start = performance.now();
      try {
        const result = await call();
        latencies.push((performance.now() - start) * 1000);
        done++;
        if (countWorkers) perWorker[result] = (perWorker[result] ?? 0) + 1;
      } catch (err) {
        if (errors++ === 0) {
          process.stderr.write(`fanout_driver: call failed: ${err}\n`);
        }
        // A failing call can reject at once; yield so that a broken run cannot starve I/O.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, loop));
  const seconds = (performance.now() - t0) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  const result = {
    done,
    seconds,
    rate: done / seconds,
    p50us: quantile(sorted, 0.5),
    p99us: quantile(sorted, 0.99),
    errors,
  };
  if (countWorkers) result.perWorker = perWorker;
  return result;
}

/** Before "ready": every worker has served a call, so no round starts with a cold subchannel. */
async function untilEveryWorkerAnswers(system, workers) {
  const seen = new Set();
  const deadline = performance.now() + STARTUP_TIMEOUT_MS;
  while (seen.size < workers) {
    if (performance.now() > deadline) {
      throw new Error(`only ${seen.size} workers answered`);
    }
    const ids = await Promise.all(
      Array.from({ length: workers }, () => system.hold()),
    );
    for (const id of ids) seen.add(id);
  }
}

function callerOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      workers: { type: "string" },
      capacity: { type: "string", default: "8" },
      "hold-ms": { type: "string", default: "2" },
    },
  });
  const workers = Number(values.workers);
  const capacity = Number(values.capacity);
  const holdMs = Number(values["hold-ms"]);
  if (!(Number.isInteger(workers) && workers >= 1)) {
    throw new Error("--workers N (N >= 1) needed");
  }
  if (!(Number.isInteger(capacity) && capacity >= 1)) {
    throw new Error("--capacity must be >= 1");
  }
  if (!(holdMs >= 0)) throw new Error("--hold-ms must be >= 0");
  return {
    workers,
    holdArgs: ["--capacity", String(capacity), "--hold-ms", String(holdMs)],
  };
}

const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

async function drive(systemName, setup, argv) {
  const config = callerOptions(argv);
  const fleet = workerFleet(systemName);
  let system;
  const shutdown = async (code) => {
    // A polite close, but never one that could keep the workers alive: bounded, then kill.
    await Promise.race([
      Promise.resolve(system?.close()).catch(() => {}),
      sleep(1000),
    ]);
    await fleet.stopAll();
    process.exit(code);
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(sig, () => shutdown(1));
  }
  try {
    system = await setup(config, fleet);
    await untilEveryWorkerAnswers(system, config.workers);
  } catch (err) {
    process.stderr.write(
      `fanout_driver: ${systemName} startup failed: ${err?.stack ?? err}\n`,
    );
    return shutdown(1);
  }
  send({
    ready: true,
    system: systemName,
    callerPid: process.pid,
    workerPids: fleet.pids(),
    version: system.version,
    node: process.version,
    // From the driver's process start: all workers reported / every worker answered a call.
    workersUpMs: fleet.upMs(),
    startupMs: Math.round(performance.now()),
  });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line.trim() === "") continue;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch {
      send({ error: `not JSON: ${line}` });
      continue;
    }
    if (cmd.quit) {
      send({ quit: true });
      return shutdown(0);
    }
    const inFlight = Number(cmd.inFlight);
    const ms = Number(cmd.ms);
    if (
      (cmd.run !== "echo" && cmd.run !== "hold") ||
      !(Number.isInteger(inFlight) && inFlight >= 1) ||
      !(ms > 0)
    ) {
      send({ error: `bad command: ${line}` });
      continue;
    }
    send(await runLoad(system[cmd.run], inFlight, ms, cmd.run === "hold"));
  }
  return shutdown(0); // stdin EOF: the orchestrator is gone
}

const [mode, ...rest] = process.argv.slice(2);
switch (mode) {
  case "moleculer":
    await drive("moleculer", moleculerCaller, rest);
    break;
  case "grpc":
    await drive("grpc", grpcCaller, rest);
    break;
  case "moleculer-worker":
    await moleculerWorker(rest);
    break;
  case "grpc-worker":
    await grpcWorker(rest);
    break;
  default:
    process.stderr.write(
      "usage: node fanout_driver.mjs <moleculer|grpc> --workers N [--capacity C] [--hold-ms H]\n",
    );
    process.exit(2);
}
