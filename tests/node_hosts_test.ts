/**
 * Node on real hosts, through the public API: option errors naming the option, bind vs advertise
 * (wildcards, IPv6 on ::1), certificates covering the advertised addresses, a cluster-wide server
 * name, CA files, TLS failures that say what to do, streaming handlers at start, readiness.
 */
import assert from "node:assert/strict";
import {
  advertiseHostFor,
  createDevCa,
  devCertificateNames,
  type InterfaceAddress,
  issueDevCertificate,
  loadDevCa,
  Node,
  type NodeOptions,
  RpcError,
  saveDevCa,
} from "../mod.ts";
import { waitFor } from "./_support/wait.ts";

async function rejectsNaming(options: NodeOptions, name: string, not?: string): Promise<void> {
  await assert.rejects(Node.start({ profile: "LOCAL", ...options }), (e) => {
    assert.ok(RpcError.is(e, "invalid_argument"), `want invalid_argument, got ${e}`);
    assert.ok(e.message.includes(name), `message should name ${name}: ${e.message}`);
    if (not) assert.ok(!e.message.includes(not), `message should not say ${not}: ${e.message}`);
    return true;
  });
}

Deno.test("Node.start: every bad option is invalid_argument naming the option as written", async () => {
  const o = (x: unknown) => x as NodeOptions;
  await rejectsNaming({ rpcPort: -1 }, "rpcPort", "port must");
  await rejectsNaming({ rpcPort: 70000 }, "rpcPort");
  await rejectsNaming({ gossipPort: 70000 }, "gossipPort", "bindPort");
  await rejectsNaming({ gossipPort: 1.5 }, "gossipPort", "bindPort");
  await rejectsNaming(o({ seeds: "127.0.0.1:7946" }), "seeds");
  await rejectsNaming(o({ seeds: [7946] }), "seeds[0]");
  await rejectsNaming({ seeds: ["10.0.0.1"] }, "seeds[0]");
  await rejectsNaming(o({ secret: 5 }), "secret");
  await rejectsNaming({ secret: "" }, "secret");
  await rejectsNaming(o({ id: 7 }), "id");
  await rejectsNaming(o({ tags: { role: 1 } }), "tags.role");
  await rejectsNaming(o({ tags: new Date() }), "tags");
  await rejectsNaming(o({ keyring: { keys: [] } }), "keyring");
  await rejectsNaming(o({ devCa: { certPem: "x", keyPem: "y" } }), "devCa.certPem");
  await rejectsNaming(o({ handlers: { compute: 5 } }), "handlers.compute");
  await rejectsNaming(o({ serverStreams: { range: "no" } }), "serverStreams.range");
  await rejectsNaming(o({ excludeSuspect: "yes" }), "excludeSuspect");
  await rejectsNaming({ tieStreak: 0 }, "tieStreak");
  await rejectsNaming({ tieStreak: 1024 }, "tieStreak");
  await rejectsNaming({ tieStreakMs: -1 }, "tieStreakMs");
  await rejectsNaming(o({ membership: [] }), "membership");
  await rejectsNaming(o({ leaveOnSignals: "SIGTERM" }), "leaveOnSignals");
  await rejectsNaming({ bind: "127.0.0.1", hostname: "127.0.0.1" }, "bind");
  await rejectsNaming({ bind: "127.0.0.1:7946" }, "bind");
  await rejectsNaming({ advertise: "10.0.0.1:7946" }, "advertise");
});

Deno.test("Node.start: an advertised wildcard is refused, naming the option and the fix", async () => {
  for (const advertise of ["0.0.0.0", "::", "[::]"]) {
    await assert.rejects(Node.start({ bind: "0.0.0.0", advertise }), (e) => {
      assert.ok(RpcError.is(e, "invalid_argument"), String(e));
      assert.match(e.message, /^advertise: .* cannot be advertised/);
      assert.match(e.message, /set advertise to an address of this host/);
      return true;
    });
  }
  await assert.rejects(
    Node.start({ rpcAdvertise: "0.0.0.0:7373" }),
    (e) => RpcError.is(e, "invalid_argument") && e.message.startsWith("rpcAdvertise: "),
  );
  await assert.rejects(
    Node.start({ gossipAdvertise: "[::]:7946" }),
    (e) => RpcError.is(e, "invalid_argument") && e.message.startsWith("gossipAdvertise: "),
  );
});

Deno.test("advertiseHostFor: a wildcard bind picks a private interface address, or refuses", () => {
  const ifs: InterfaceAddress[] = [
    { family: "IPv4", address: "127.0.0.1", name: "lo" },
    { family: "IPv6", address: "::1", name: "lo" },
    { family: "IPv4", address: "169.254.3.4", name: "eth9" },
    { family: "IPv4", address: "203.0.113.7", name: "eth0" },
    { family: "IPv6", address: "fe80::1", name: "eth0" },
    { family: "IPv6", address: "2001:db8::7", name: "eth0" },
    { family: "IPv4", address: "10.1.2.3", name: "eth1" },
    { family: "IPv6", address: "fd00::3", name: "eth1" },
  ];
  assert.equal(advertiseHostFor("10.9.9.9", "advertise", ifs), "10.9.9.9");
  assert.equal(advertiseHostFor("0.0.0.0", "advertise", ifs), "10.1.2.3");
  assert.equal(advertiseHostFor("::", "advertise", ifs), "fd00::3");
  // Without a private address, a global one.
  assert.equal(advertiseHostFor("0.0.0.0", "advertise", ifs.slice(0, 6)), "203.0.113.7");
  assert.equal(advertiseHostFor("::", "advertise", ifs.slice(0, 6)), "2001:db8::7");
  // Only loopback and link-local: refused, naming the option.
  assert.throws(
    () => advertiseHostFor("0.0.0.0", "advertise", ifs.slice(0, 3)),
    (e) =>
      RpcError.is(e, "invalid_argument") && /advertise is required when binding 0\.0\.0\.0/.test(
        e.message,
      ),
  );
  assert.throws(
    () => advertiseHostFor("::", "advertise", ifs.slice(0, 5)),
    (e) => RpcError.is(e, "invalid_argument") && /no routable IPv6 address/.test(e.message),
  );
});

Deno.test("Node: a wildcard bind advertises an interface address, never the wildcard", async () => {
  let expected: string;
  try {
    expected = advertiseHostFor("0.0.0.0", "advertise");
  } catch (e) {
    // A host with no routable address refuses; that is the documented behaviour.
    assert.ok(RpcError.is(e, "invalid_argument"));
    await assert.rejects(
      Node.start({ bind: "0.0.0.0" }),
      (e) => RpcError.is(e, "invalid_argument"),
    );
    return;
  }
  const node = await Node.start({ profile: "LOCAL", bind: "0.0.0.0" }); // no seeds: sends nothing
  try {
    assert.ok(node.rpcAddr.startsWith(`${expected}:`), node.rpcAddr);
    assert.ok(node.gossipAddr.startsWith(`${expected}:`), node.gossipAddr);
  } finally {
    await node.stop();
  }
});

Deno.test("Node: bind a wildcard, advertise loopback: calls and gossip use the advertised address", async () => {
  const ca = await createDevCa();
  const a = await Node.start({
    profile: "LOCAL",
    id: "a",
    bind: "0.0.0.0",
    advertise: "127.0.0.1",
    devCa: ca,
    tags: { role: "seed" },
  });
  const b = await Node.start({
    profile: "LOCAL",
    id: "b",
    bind: "0.0.0.0",
    advertise: "127.0.0.1",
    devCa: ca,
    seeds: [a.gossipAddr],
    tags: { role: "worker" },
    handlers: { who: () => "b" },
  });
  try {
    assert.match(a.gossipAddr, /^127\.0\.0\.1:\d+$/);
    assert.match(b.rpcAddr, /^127\.0\.0\.1:\d+$/);
    await waitFor(() => a.registry.workers("role=worker").length === 1, "b seen by a");
    assert.equal(await a.client.callWorker("who", null, { filter: "role=worker" }), "b");
  } finally {
    await b.stop();
    await a.stop();
  }
});

Deno.test("Node: IPv6 end to end on ::1 (bind, advertise, seeds in brackets, calls)", async () => {
  const ca = await createDevCa();
  const a = await Node.start({ profile: "LOCAL", id: "a6", bind: "::1", devCa: ca });
  const b = await Node.start({
    profile: "LOCAL",
    id: "b6",
    bind: "::",
    advertise: "::1",
    devCa: ca,
    seeds: [a.gossipAddr],
    tags: { role: "worker" },
    handlers: { who: () => "b6" },
  });
  try {
    assert.match(a.gossipAddr, /^\[::1\]:\d+$/);
    assert.match(b.rpcAddr, /^\[::1\]:\d+$/);
    await waitFor(() => a.registry.workers("role=worker").length === 1, "b6 seen by a6");
    assert.equal(await a.client.callWorker("who", null, { filter: "role=worker" }), "b6");
  } finally {
    await b.stop();
    await a.stop();
  }
});

Deno.test("Node: the development certificate covers the advertised address (127.0.0.2)", async () => {
  // Before: node certificates named only localhost and 127.0.0.1, so any other address failed
  // with "certificate not valid for name".
  const ca = await createDevCa();
  const a = await Node.start({ profile: "LOCAL", id: "c1", bind: "127.0.0.2", devCa: ca });
  const b = await Node.start({
    profile: "LOCAL",
    id: "c2",
    bind: "127.0.0.3",
    devCa: ca,
    seeds: [a.gossipAddr],
    tags: { role: "worker" },
    handlers: { who: () => "c2" },
  });
  try {
    await waitFor(() => a.registry.workers("role=worker").length === 1, "c2 seen");
    assert.equal(
      await a.client.callWorker("who", null, { filter: "role=worker", timeoutMs: 5000 }),
      "c2",
    );
  } finally {
    await b.stop();
    await a.stop();
  }
});

Deno.test("Node: a cluster-wide serverName is verified whatever the address called", async () => {
  const ca = await createDevCa();
  // Production style: certificates for one name only, no IP in them.
  const tlsFor = () => issueDevCertificate(ca, ["rpcnet.cluster"]);
  const common = { profile: "LOCAL" as const, caCerts: [ca.certPem] };
  const a = await Node.start({
    ...common,
    id: "s1",
    tls: await tlsFor(),
    serverName: "rpcnet.cluster",
  });
  const b = await Node.start({
    ...common,
    id: "s2",
    tls: await tlsFor(),
    serverName: "rpcnet.cluster",
    seeds: [a.gossipAddr],
    tags: { role: "worker" },
    handlers: { who: () => "s2" },
  });
  const noName = await Node.start({
    ...common,
    id: "s3",
    tls: await tlsFor(),
    seeds: [a.gossipAddr],
    client: { connectTimeoutMs: 3000 },
  });
  try {
    await waitFor(() => a.registry.workers("role=worker").length === 1, "s2 seen");
    await waitFor(() => noName.registry.workers("role=worker").length === 1, "s2 seen by s3");
    assert.equal(await a.client.callWorker("who", null, { filter: "role=worker" }), "s2");
    await assert.rejects(
      noName.client.callWorker("who", null, { filter: "role=worker", timeoutMs: 5000 }),
      (e) => RpcError.is(e) && /does not name the address it was called at/.test(e.message),
    );
  } finally {
    await noName.stop();
    await b.stop();
    await a.stop();
  }
});

Deno.test("Node: nodes with different CAs fail calls saying to give every node the same CA", async () => {
  const a = await Node.start({ profile: "LOCAL", id: "x1", devCa: await createDevCa() });
  const b = await Node.start({
    profile: "LOCAL",
    id: "x2",
    devCa: await createDevCa(),
    seeds: [a.gossipAddr],
    tags: { role: "worker" },
    handlers: { who: () => "x2" },
  });
  try {
    await waitFor(() => a.registry.workers("role=worker").length === 1, "x2 seen");
    await assert.rejects(
      a.client.callWorker("who", null, { filter: "role=worker", timeoutMs: 5000 }),
      (e) =>
        RpcError.is(e) &&
        e.message.includes(
          "this node's CA did not issue the peer's certificate: give every " +
            "node the same CA",
        ),
    );
  } finally {
    await b.stop();
    await a.stop();
  }
});

Deno.test("saveDevCa/loadDevCa: a CA file with mode 0600 that every node can load", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = await createDevCa();
    const path = `${dir}/ca.pem`;
    await Deno.writeTextFile(path, "old", { mode: 0o644 });
    await saveDevCa(path, ca);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual(await loadDevCa(path), ca);
    // The JSON form the examples used to write.
    await Deno.writeTextFile(`${dir}/ca.json`, JSON.stringify(ca));
    assert.deepEqual(await loadDevCa(`${dir}/ca.json`), ca);
    await Deno.writeTextFile(`${dir}/bad.pem`, "-----BEGIN CERTIFICATE-----\nAAAA\n");
    await assert.rejects(loadDevCa(`${dir}/bad.pem`), (e) => RpcError.is(e, "invalid_argument"));
    await assert.rejects(loadDevCa(`${dir}/missing.pem`), (e) => RpcError.is(e, "unavailable"));
    // A loaded CA issues certificates that the original trusts.
    const tls = await issueDevCertificate(await loadDevCa(path), ["10.0.0.1"]);
    assert.equal(tls.caPem, ca.certPem);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("devCertificateNames: advertised and bound hosts, server name, loopback; no wildcards", () => {
  assert.deepEqual(
    devCertificateNames(["10.0.0.5", "[fd00::5]", "0.0.0.0", "::", undefined, "rpcnet.cluster"]),
    ["10.0.0.5", "fd00::5", "rpcnet.cluster", "localhost", "127.0.0.1", "::1"],
  );
});

Deno.test("Node.start: streaming handlers are served from the start; readiness", async () => {
  const ca = await createDevCa();
  const a = await Node.start({ profile: "LOCAL", id: "r1", devCa: ca });
  assert.equal(a.ready, true);
  await a.whenReady(10);
  const b = await Node.start({
    profile: "LOCAL",
    id: "r2",
    devCa: ca,
    seeds: [a.gossipAddr],
    tags: { role: "worker" },
    serverStreams: {
      range: async function* (n) {
        for (let i = 0; i < (n as number); i++) yield i;
      },
    },
    clientStreams: {
      sum: async (reqs) => {
        let s = 0;
        for await (const r of reqs) s += r as number;
        return s;
      },
    },
    bidiStreams: {
      double: async function* (reqs) {
        for await (const r of reqs) yield (r as number) * 2;
      },
    },
  });
  try {
    await waitFor(() => a.registry.workers("role=worker").length === 1, "r2 seen");
    const got: unknown[] = [];
    for await (const v of a.client.serverStream("range", 3, { filter: "role=worker" })) {
      got.push(v);
    }
    assert.deepEqual(got, [0, 1, 2]);
    const nums = async function* () {
      yield 1;
      yield 2;
    };
    assert.equal(await a.client.clientStream("sum", nums(), { filter: "role=worker" }), 3);
    const doubled: unknown[] = [];
    for await (const v of a.client.bidiStream("double", nums(), { filter: "role=worker" })) {
      doubled.push(v);
    }
    assert.deepEqual(doubled, [2, 4]);
    assert.equal(b.ready, true);
    await b.leave();
    assert.equal(b.ready, false);
    await assert.rejects(b.whenReady(10), (e) => RpcError.is(e, "unavailable"));
  } finally {
    await b.stop();
    await a.stop();
  }
});
