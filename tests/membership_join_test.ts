/**
 * Joining (issue 9 item 14, issue 10 items 1 and 3) over real UDP/TCP on loopback: refusals for
 * another label or a non-rpcnet port fail fast with the reason; a bad seed is invalid_argument at
 * once; seeds may be names resolving to several addresses, re-resolved on each attempt; a seed
 * resolving to this node itself never counts; background retry-join with backoff and a readiness
 * promise; IPv6 gossip end to end on ::1.
 */
import assert from "node:assert/strict";
import { ClusterMembership, type ClusterMembershipOptions, RpcError } from "../mod.ts";
import { waitFor } from "./_support/wait.ts";

async function node(opts: ClusterMembershipOptions = {}): Promise<ClusterMembership> {
  const m = new ClusterMembership({ profile: "LOCAL", ...opts });
  await m.start();
  return m;
}

function aliveCount(m: ClusterMembership): number {
  return m.members().filter((x) => x.state === "alive").length;
}

/** A port nothing listens on right now (bound, then released). */
async function freePort(hostname = "127.0.0.1"): Promise<number> {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await new Promise((r) => setTimeout(r, 10));
  return port;
}

Deno.test({
  name: "join: another cluster label fails fast with the reason",
  sanitizeResources: false,
  async fn() {
    const seed = await node({ id: "seed", label: "prod" });
    const other = await node({ id: "other", label: "staging", bootstrapTimeoutMs: 10_000 });
    try {
      const t0 = Date.now();
      await assert.rejects(other.join([seed.localAddr]), (e) => {
        assert.ok(RpcError.is(e, "invalid_argument"), String(e));
        assert.match((e as Error).message, /label/);
        return true;
      });
      assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
      assert.equal(other.joined, false);
    } finally {
      await other.shutdown();
      await seed.shutdown();
    }
  },
});

Deno.test({
  name: "join: a bad seed string is invalid_argument at once, naming it",
  sanitizeResources: false,
  async fn() {
    const m = await node({ bootstrapTimeoutMs: 10_000 });
    try {
      const t0 = Date.now();
      for (const bad of [["10.0.0.1"], ["fd00::1:7946"], [""], ["host:0"]]) {
        await assert.rejects(m.join(bad), (e) => {
          assert.ok(RpcError.is(e, "invalid_argument"), String(e));
          assert.match((e as Error).message, /seeds\[0\]/);
          return true;
        });
      }
      await assert.rejects(m.join("127.0.0.1:1" as unknown as string[]), /seeds/);
      assert.ok(Date.now() - t0 < 500);
    } finally {
      await m.shutdown();
    }
  },
});

Deno.test({
  name: "join: a seed port that speaks another protocol says so, fast",
  sanitizeResources: false,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const serving = (async () => {
      for await (const conn of listener) {
        await conn.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"))
          .catch(() => {});
        conn.close();
      }
    })();
    const m = await node({ bootstrapTimeoutMs: 10_000 });
    try {
      const t0 = Date.now();
      await assert.rejects(m.join([`127.0.0.1:${port}`]), (e) => {
        assert.ok(RpcError.is(e, "invalid_argument"), String(e));
        assert.match((e as Error).message, /not answer with the rpcnet gossip protocol.*HTTP/);
        return true;
      });
      assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    } finally {
      await m.shutdown();
      listener.close();
      await serving.catch(() => {});
    }
  },
});

Deno.test({
  name: "join: localhost resolves to 127.0.0.1 and ::1; the reachable one joins",
  sanitizeResources: false,
  async fn() {
    const seed = await node({ id: "seed" });
    const port = Number(seed.localAddr.split(":")[1]);
    const j = await node({ id: "joiner", bootstrapTimeoutMs: 5000 });
    try {
      assert.equal(await j.join([`localhost:${port}`]), 1);
      assert.ok(j.joined);
      await waitFor(
        () => aliveCount(seed) === 2 && aliveCount(j) === 2,
        "seed and joiner to see each other alive",
        { timeoutMs: 5000 },
      );
    } finally {
      await j.shutdown();
      await seed.shutdown();
    }
  },
});

Deno.test({
  name:
    "join: a seed name resolving only to this node never counts; re-resolved, it joins once others appear",
  sanitizeResources: false,
  async fn() {
    // A headless-service-like name: the same port on several loopback addresses.
    const port = await freePort("127.0.0.1");
    let records = ["127.0.0.1"];
    let lookups = 0;
    const resolveHost = (name: string) => {
      assert.equal(name, "svc.cluster.test");
      lookups++;
      return Promise.resolve([...records]);
    };
    const seeds = [`svc.cluster.test:${port}`];
    const a = await node({ id: "a", bindPort: port, seeds, resolveHost });
    let b: ClusterMembership | undefined;
    try {
      // Alone behind the name: retrying, never joined.
      await waitFor(() => a.joinStatus().attempts >= 3, "3 join attempts", { timeoutMs: 5000 });
      assert.equal(a.joined, false);
      assert.equal(a.joinStatus().state, "joining");
      assert.match(a.joinStatus().lastError ?? "", /only to this node/);
      // A second node comes up behind the name: both join each other.
      records = ["127.0.0.1", "127.0.0.2"];
      b = await node({ id: "b", bindHost: "127.0.0.2", bindPort: port, seeds, resolveHost });
      await b.whenJoined();
      await a.whenJoined();
      assert.ok(a.joined && b.joined);
      assert.equal(a.stats().joined, 1);
      assert.ok(lookups >= 4, `resolved ${lookups} times`);
      await waitFor(
        () => aliveCount(a) === 2 && aliveCount(b!) === 2,
        "a and b to see each other alive",
        { timeoutMs: 5000 },
      );
    } finally {
      await b?.shutdown();
      await a.shutdown();
    }
  },
});

Deno.test({
  name: "join: with the seeds option, start() does not fail; the node joins in the background",
  sanitizeResources: false,
  async fn() {
    const port = await freePort();
    const late = `127.0.0.1:${port}`;
    const m = await node({
      id: "early",
      seeds: [late],
      retryJoinIntervalMs: 100,
      retryJoinMaxIntervalMs: 300,
    });
    let seed: ClusterMembership | undefined;
    try {
      assert.equal(m.joined, false);
      await waitFor(() => m.joinStatus().attempts >= 3, "3 join attempts", { timeoutMs: 5000 });
      const attempts = m.joinStatus().attempts;
      assert.ok(attempts <= 12, `no backoff: ${attempts} attempts`);
      seed = await node({ id: "late-seed", bindPort: port, seeds: [] });
      assert.ok(seed.joined, "an empty seed list is a new cluster: joined at once");
      await m.whenJoined();
      assert.equal(m.joinStatus().state, "joined");
      await waitFor(() => aliveCount(seed!) === 2, "the late seed to see both alive", {
        timeoutMs: 5000,
      });
    } finally {
      await seed?.shutdown();
      await m.shutdown();
    }
  },
});

Deno.test({
  name: "join: background join gives up after retryJoinMax attempts, rejecting whenJoined()",
  sanitizeResources: false,
  async fn() {
    const port = await freePort();
    const m = await node({
      seeds: [`127.0.0.1:${port}`],
      retryJoinIntervalMs: 50,
      retryJoinMaxIntervalMs: 100,
      retryJoinMax: 3,
    });
    try {
      await assert.rejects(m.whenJoined(), (e) => RpcError.is(e, "unavailable"));
      assert.equal(m.joinStatus().state, "failed");
      assert.equal(m.joinStatus().attempts, 3);
    } finally {
      await m.shutdown();
    }
  },
});

Deno.test({
  name: "join: IPv6 gossip end to end on ::1 (bind ::1, advertise [::1]:port, seeds [::1]:port)",
  sanitizeResources: false,
  async fn() {
    const port = await freePort("::1");
    const a = await node({
      id: "v6a",
      bindHost: "::1",
      bindPort: port,
      advertiseAddr: `[::1]:${port}`,
    });
    const b = await node({ id: "v6b", bindHost: "::1", seeds: [`[::1]:${port}`] });
    try {
      assert.equal(a.localAddr, `[::1]:${port}`);
      assert.match(b.localAddr, /^\[::1\]:\d+$/);
      await b.whenJoined();
      await waitFor(
        () => aliveCount(a) === 2 && aliveCount(b) === 2,
        "a and b to see each other alive over IPv6",
        { timeoutMs: 5000 },
      );
      // Probes over UDP/IPv6 are answered.
      const probes = a.stats().probes;
      await waitFor(() => a.stats().probes >= probes + 3, "3 probes over IPv6", {
        timeoutMs: 5000,
      });
      assert.equal(a.get("v6b")!.state, "alive");
      assert.equal(a.stats().suspicions, 0);
    } finally {
      await b.shutdown();
      await a.shutdown();
    }
  },
});
