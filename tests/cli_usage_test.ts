/**
 * `rpcnet` usage: exit codes, --help everywhere, flags named in errors, colours, agent settings
 * precedence (flags > env > config file), handlers modules, keygen and ca files.
 */
import assert from "node:assert/strict";
import { main } from "../src/cli/main.ts";
import { colours, type Io, parseFlags } from "../src/cli/common.ts";
import { AGENT_FLAGS, nodeAddresses, resolveAgentConfig } from "../src/cli/agent_config.ts";
import { loadHandlers } from "../src/cli/handlers_module.ts";
import { RpcError } from "../src/errors.ts";
import { HANDLERS, rpcnet } from "./_support/cli_helpers.ts";

/** An in-memory Io: what a command wrote, and a fixed environment. */
function memIo(env: Record<string, string> = {}, isTerminal = false) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    isTerminal,
    env: (k) => env[k],
  };
  return { io, out: () => out.join(""), err: () => err.join("") };
}

const COMMANDS = ["agent", "members", "monitor", "call", "top", "keygen", "ca", "sim"];

Deno.test("rpcnet: bad flags exit 2 naming the flag (subprocess)", async () => {
  const bogus = await rpcnet(["members", "--bogus"]);
  assert.equal(bogus.code, 2);
  assert.match(bogus.stderr, /--bogus/);
  const timeout = await rpcnet(["call", "compute", "--timeout", "soon"]);
  assert.equal(timeout.code, 2);
  assert.match(timeout.stderr, /--timeout must be a duration/);
  const unknown = await rpcnet(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const help = await rpcnet(["top", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: rpcnet top/);
  // Nothing listening: a failure (1), not a usage error.
  const down = await rpcnet(["members", "--addr", "127.0.0.1:9"], {}, 20_000);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /rpcnet members: unavailable/);
});

Deno.test("rpcnet: --help on every command, usage errors in process", async () => {
  for (const c of COMMANDS) {
    const m = memIo();
    assert.equal(await main([c, "--help"], m.io), 0, c);
    assert.match(m.out(), new RegExp(`usage: rpcnet ${c}`), c);
  }
  const top = memIo();
  assert.equal(await main(["--help"], top.io), 0);
  for (const c of COMMANDS) assert.match(top.out(), new RegExp(`\\n  ${c} `));

  const cases: [string[], RegExp][] = [
    [["members", "--addr", "nowhere"], /--addr must be HOST:PORT/],
    [["members", "--filter", "role=("], /--filter/],
    [["members", "--json=yes"], /--json/],
    [["call"], /METHOD is missing/],
    [["call", "m", "{not json"], /not valid JSON/],
    [["call", "m", "--meta", "novalue"], /--meta expects KEY=VALUE/],
    [["call", "m", "1", "extra"], /unexpected argument 'extra'/],
    [["top", "--interval", "5ms"], /--interval must be at least 100ms/],
    [["top", "--count", "0"], /--count must be a positive integer/],
    [["keygen", "--bytes", "24"], /--bytes must be 16 or 32/],
    [["ca", "issue"], /--name is required/],
    [["ca", "issue", "--name", "n1", "--ip", "not-an-ip"], /--ip must be an IP address/],
    [["ca", "rotate"], /unknown 'ca' subcommand 'rotate'/],
    [["sim", "--nodes", "many"], /--nodes must be a number/],
    [["agent", "--profile", "FAST"], /--profile must be one of LAN, WAN, LOCAL/],
    [["agent", "--rpc-port", "70000"], /--rpc-port must be a port/],
    [["agent", "--seed", "nohost"], /seed 'nohost' must be HOST:PORT/],
    [["agent", "--advertise", "0.0.0.0"], /--advertise 0.0.0.0 is a wildcard/],
    [["agent", "--cert", "c.pem"], /--key is needed too/],
    [["agent", "--ca", "/nonexistent/ca.pem"], /--ca: cannot read/],
    [["agent", "--keyring-file", "/nonexistent/keys"], /--keyring-file: cannot read/],
  ];
  for (const [args, message] of cases) {
    const m = memIo();
    assert.equal(await main(args, m.io), 2, `${args.join(" ")}: ${m.err()}`);
    assert.match(m.err(), message, args.join(" "));
    assert.match(m.err(), /\(see 'rpcnet \w+ --help'\)/);
  }
  const env = memIo({ RPCNET_ADDR: "bad" });
  assert.equal(await main(["members"], env.io), 2);
  assert.match(env.err(), /RPCNET_ADDR must be HOST:PORT/);
});

Deno.test("rpcnet: colours only on a terminal and never with NO_COLOR", () => {
  assert.equal(colours(memIo({}, true).io).green("x"), "\x1b[32mx\x1b[0m");
  assert.equal(colours(memIo({}, false).io).green("x"), "x");
  assert.equal(colours(memIo({ NO_COLOR: "1" }, true).io).green("x"), "x");
});

Deno.test("rpcnet agent: settings precedence is flags > environment > config file > default", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/agent.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        id: "from-file",
        rpcPort: 7001,
        seeds: ["10.0.0.1:7946"],
        tags: { role: "file" },
        profile: "WAN",
        label: "file-label",
      }),
    );
    const resolve = (args: string[], env: Record<string, string>) =>
      resolveAgentConfig(parseFlags(args, AGENT_FLAGS, 0), memIo(env).io);

    const onlyFile = await resolve(["--config", file], {});
    assert.equal(onlyFile.id, "from-file");
    assert.equal(onlyFile.rpcPort, 7001);
    assert.deepEqual(onlyFile.seeds, ["10.0.0.1:7946"]);
    assert.deepEqual(onlyFile.tags, { role: "file" });

    const env = {
      RPCNET_CONFIG: file,
      RPCNET_ID: "from-env",
      RPCNET_SEEDS: "127.0.0.1:1,127.0.0.1:2",
      RPCNET_TAGS: "role=env,zone=z1",
      RPCNET_PROFILE: "LOCAL",
    };
    const envOverFile = await resolve([], env);
    assert.equal(envOverFile.id, "from-env");
    assert.deepEqual(envOverFile.seeds, ["127.0.0.1:1", "127.0.0.1:2"]);
    assert.deepEqual(envOverFile.tags, { role: "env", zone: "z1" });
    assert.equal(envOverFile.profile, "LOCAL");
    assert.equal(envOverFile.label, "file-label"); // only the file gives it
    assert.equal(envOverFile.rpcPort, 7001);

    const flags = await resolve(
      ["--id", "from-flag", "--seed", "127.0.0.1:3", "--tag", "role=flag", "--rpc-port", "0"],
      env,
    );
    assert.equal(flags.id, "from-flag");
    assert.deepEqual(flags.seeds, ["127.0.0.1:3"]);
    assert.deepEqual(flags.tags, { role: "flag" }); // replaced, not merged
    assert.equal(flags.rpcPort, 0);

    await Deno.writeTextFile(file, JSON.stringify({ seedz: [] }));
    await assert.rejects(resolve(["--config", file], {}), /config key 'seedz'.*is unknown/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rpcnet agent: --bind/--advertise map onto the Node's bind, advertise and ports", () => {
  const base = { seeds: [], tags: {} };
  assert.deepEqual(nodeAddresses(base), { bind: "127.0.0.1", rpcPort: 7373, gossipPort: 7946 });
  const a = nodeAddresses({ ...base, bind: "127.0.0.2:8000", rpcPort: 8001 });
  assert.deepEqual(a, { bind: "127.0.0.2", rpcPort: 8001, gossipPort: 8000 });
  assert.deepEqual(nodeAddresses({ ...base, advertise: "127.0.0.3" }), {
    bind: "127.0.0.3",
    advertise: "127.0.0.3",
    rpcPort: 7373,
    gossipPort: 7946,
  });
  assert.equal(nodeAddresses({ ...base, bind: "[::1]:0" }).bind, "::1");
  // A wildcard bind with an advertised host and a mapped gossip port (NAT, containers).
  assert.deepEqual(nodeAddresses({ ...base, bind: "0.0.0.0:7946", advertise: "10.1.2.3:30946" }), {
    bind: "0.0.0.0",
    advertise: "10.1.2.3",
    gossipAdvertise: "10.1.2.3:30946",
    rpcPort: 7373,
    gossipPort: 7946,
  });
  assert.throws(
    () => nodeAddresses({ ...base, bind: "0.0.0.0", advertise: "0.0.0.0" }),
    /--advertise 0\.0\.0\.0 is a wildcard/,
  );
});

Deno.test("rpcnet agent: a handlers module's exports become handlers by kind", async () => {
  const handlers = await loadHandlers(HANDLERS);
  assert.deepEqual(
    handlers.map((h) => `${h.method}:${h.kind}`).sort(),
    ["compute:unary", "count:serverStream", "echo.v1:unary", "slow:unary", "sum:clientStream"],
  );
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bad.ts`, "export const limit = 5;\nexport function f() {}\n");
    await assert.rejects(
      loadHandlers(`${dir}/bad.ts`),
      (e) =>
        RpcError.is(e, "invalid_argument") && /export 'limit'.*is not a handler/.test(e.message),
    );
    await Deno.writeTextFile(`${dir}/empty.ts`, "export {};\n");
    await assert.rejects(loadHandlers(`${dir}/empty.ts`), /exports no handler/);
    await assert.rejects(loadHandlers(`${dir}/missing.ts`), /cannot import/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rpcnet keygen and ca: a key, a CA and a node certificate with safe file modes", async () => {
  const k = memIo();
  assert.equal(await main(["keygen"], k.io), 0);
  const key = Uint8Array.from(atob(k.out().trim()), (c) => c.charCodeAt(0));
  assert.equal(key.length, 32);

  const dir = await Deno.makeTempDir();
  try {
    const ca = `${dir}/rpcnet-ca.pem`;
    assert.equal(await main(["ca", "create", "--out", ca], memIo().io), 0);
    assert.equal((await Deno.stat(`${dir}/rpcnet-ca-key.pem`)).mode! & 0o777, 0o600);
    assert.match(await Deno.readTextFile(ca), /^-----BEGIN CERTIFICATE-----/);
    assert.match(await Deno.readTextFile(`${dir}/rpcnet-ca-key.pem`), /PRIVATE KEY/);
    const again = memIo();
    assert.equal(await main(["ca", "create", "--out", ca], again.io), 2);
    assert.match(again.err(), /already exists \(pass --force/);

    const issued = memIo();
    const out = `${dir}/node1.pem`;
    assert.equal(
      await main(
        ["ca", "issue", "--name", "node1", "--ip", "127.0.0.1", "--ca", ca, "--out", out, "--json"],
        issued.io,
      ),
      0,
      issued.err(),
    );
    assert.deepEqual(JSON.parse(issued.out()), { cert: out, key: `${dir}/node1-key.pem` });
    assert.equal((await Deno.stat(`${dir}/node1-key.pem`)).mode! & 0o777, 0o600);
    const x509 = await import("@peculiar/x509");
    const cert = new x509.X509Certificate(await Deno.readTextFile(out));
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    assert.deepEqual(san.names.items.map((n) => n.value).sort(), ["127.0.0.1", "node1"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
