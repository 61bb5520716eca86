import assert from "node:assert/strict";
import { ClusterMembership, RpcError } from "../mod.ts";
import {
  formatSimReport,
  SimNetwork,
  type SimScenario,
  simulate,
  VirtualClock,
} from "../src/membership/sim/mod.ts";

/** 10 % loss for `durationMs` of virtual time: the cluster converges and no live member is declared dead. */
async function assertNoFalseFailures(
  o: { nodes: number; durationMs: number; seed: number },
): Promise<void> {
  const r = await simulate({ ...o, scenario: "false-positives", loss: 0.1 });
  assert.ok(r.bootstrap.converged);
  assert.equal(r.falsePositives.failed, 0, JSON.stringify(r.falsePositives));
  assert.equal(r.protocolErrors.count, 0, r.protocolErrors.last);
}

Deno.test("sim clock: timers fire in time order, ties first-in first-out, cancel works", async () => {
  const clock = new VirtualClock({ seed: 3 });
  const fired: string[] = [];
  clock.setTimeout(() => fired.push(`c@${clock.now()}`), 30);
  clock.setTimeout(() => fired.push(`a@${clock.now()}`), 10);
  const h = clock.setTimeout(() => fired.push("cancelled"), 20);
  clock.setTimeout(() => fired.push(`b1@${clock.now()}`), 20);
  clock.setTimeout(() => fired.push(`b2@${clock.now()}`), 20);
  clock.setTimeout(() => {
    fired.push(`a2@${clock.now()}`);
    clock.setTimeout(() => fired.push(`nested@${clock.now()}`), 5);
  }, 10);
  clock.clearTimeout(h);
  clock.clearTimeout(12345); // unknown handles are ignored
  await clock.advance(25);
  assert.equal(clock.now(), 25);
  assert.deepEqual(fired, ["a@10", "a2@10", "nested@15", "b1@20", "b2@20"]);
  await clock.runUntil(100);
  assert.deepEqual(fired.slice(5), ["c@30"]);
  assert.equal(clock.pending, 0);

  // Thousands of random timers come out sorted (exercises the heap).
  const times: number[] = [];
  for (let i = 0; i < 5000; i++) {
    clock.setTimeout(() => times.push(clock.now()), clock.random() * 1000);
  }
  await clock.advance(1000);
  assert.equal(times.length, 5000);
  for (let i = 1; i < times.length; i++) assert.ok(times[i - 1] <= times[i]);
});

Deno.test("sim clock: async continuations run in virtual time; equal seeds replay equally", async () => {
  const run = async (seed: number) => {
    const clock = new VirtualClock({ seed });
    const log: number[] = [];
    const sleep = (ms: number) => new Promise<void>((r) => clock.setTimeout(r, ms));
    const worker = async () => {
      for (let i = 0; i < 5; i++) {
        await sleep(100 + Math.floor(clock.random() * 50));
        log.push(clock.now());
      }
    };
    const done = worker();
    await clock.advance(10_000);
    await done;
    return log;
  };
  const a = await run(9);
  assert.equal(a.length, 5, "awaits chained on virtual timers all complete");
  assert.ok(a[4] >= 500 && a[4] < 750);
  assert.deepEqual(await run(9), a);
  assert.notDeepEqual(await run(10), a);
});

Deno.test("sim network: latency, loss rate within bounds, byte counters", async () => {
  const net = new SimNetwork({ seed: 5, loss: 0.1, latencyMs: 2, jitterMs: 1 });
  const a = net.createTransport();
  const b = net.createTransport();
  assert.equal(a.localAddr, "10.0.0.1:7946");
  const arrivals: number[] = [];
  b.onPacket((data, from) => {
    assert.equal(from, a.localAddr);
    assert.equal(data.length, 100);
    arrivals.push(net.clock.now());
  });
  const n = 20_000;
  for (let i = 0; i < n; i++) a.sendPacket(b.localAddr, new Uint8Array(100));
  await net.clock.advance(10);
  const rate = 1 - arrivals.length / n;
  assert.ok(rate > 0.09 && rate < 0.11, `observed loss ${rate}`);
  assert.ok(arrivals.every((t) => t >= 2 && t < 3), "latency = base + jitter");
  assert.equal(a.stats().packetsOut, n);
  assert.equal(a.stats().bytesOut, n * 100);
  assert.equal(b.stats().packetsIn, arrivals.length);
  assert.equal(a.stats().lost, n - arrivals.length);
  assert.throws(
    () => a.sendPacket(b.localAddr, new Uint8Array(1401)),
    (e) => RpcError.is(e, "invalid_argument"),
  );
  assert.throws(() => net.setLoss(1.5), (e) => RpcError.is(e, "invalid_argument"));
});

Deno.test("sim network: partitions block datagrams and requests until healed", async () => {
  const net = new SimNetwork({ seed: 1 });
  const [a, b, c] = [net.createTransport(), net.createTransport(), net.createTransport()];
  const got: string[] = [];
  for (const t of [a, b, c]) t.onPacket((_d, from) => got.push(`${from}->${t.localAddr}`));
  c.onRequest((req) => Promise.resolve(new Uint8Array([req[0] + 1])));
  net.partition([[a.localAddr, b.localAddr], [c.localAddr]]);
  a.sendPacket(b.localAddr, new Uint8Array(1));
  a.sendPacket(c.localAddr, new Uint8Array(1));
  c.sendPacket(a.localAddr, new Uint8Array(1));
  const req = a.request(c.localAddr, new Uint8Array([1]), 500);
  const settled = req.then(() => "ok", (e) => e);
  await net.clock.advance(1000);
  assert.deepEqual(got, [`${a.localAddr}->${b.localAddr}`]);
  assert.ok(RpcError.is(await settled, "deadline_exceeded"));
  assert.equal(a.stats().blocked, 1);

  net.heal();
  a.sendPacket(c.localAddr, new Uint8Array(1));
  const reply = a.request(c.localAddr, new Uint8Array([41]), 500);
  await net.clock.advance(100);
  assert.deepEqual([...await reply], [42]);
  assert.equal(got.length, 2);
});

Deno.test("sim network: a paused node runs nothing, then catches up timers-first like an event loop; crash is final", async () => {
  const net = new SimNetwork({ seed: 2, latencyMs: 1, jitterMs: 0 });
  const a = net.createTransport();
  const b = net.createTransport();
  const log: string[] = [];
  b.onPacket((d) => log.push(`pkt${d[0]}@${net.clock.now()}`));
  b.clock.setTimeout(() => log.push(`timer@${net.clock.now()}`), 500);
  b.onRequest(() => Promise.resolve(new Uint8Array([7])));
  net.pause(b.localAddr, 2000);
  assert.ok(net.isPaused(b.localAddr));
  a.sendPacket(b.localAddr, new Uint8Array([1]));
  net.clock.setTimeout(() => a.sendPacket(b.localAddr, new Uint8Array([2])), 1000);
  const fast = a.request(b.localAddr, new Uint8Array([0]), 500).then(() => "ok", (e) => e);
  const slow = a.request(b.localAddr, new Uint8Array([0]), 5000);
  await net.clock.advance(1999);
  assert.equal(log.length, 0, "nothing runs during the pause");
  await net.clock.advance(10);
  assert.deepEqual(log, ["timer@2000", "pkt1@2000", "pkt2@2000"]);
  assert.ok(RpcError.is(await fast, "deadline_exceeded"));
  assert.deepEqual([...await slow], [7]);

  // Receive buffer is bounded while paused.
  net.pause(b.localAddr, 100);
  for (let i = 0; i < 300; i++) a.sendPacket(b.localAddr, new Uint8Array([3]));
  await net.clock.advance(200);
  assert.equal(net.stats(b.localAddr).bufferDropped, 300 - 256);

  net.crash(b.localAddr);
  b.clock.setTimeout(() => log.push("after crash"), 1);
  a.sendPacket(b.localAddr, new Uint8Array([9]));
  const refused = a.request(b.localAddr, new Uint8Array([0]), 1000).then(() => "ok", (e) => e);
  await net.clock.advance(100);
  assert.ok(!log.includes("after crash") && !log.some((l) => l.startsWith("pkt9")));
  assert.ok(RpcError.is(await refused, "unavailable"));
});

// ---------------------------------------------------------------- simulate(): real ClusterMembership

const SLOW = Deno.env.get("RPCNET_SLOW") === "1";

Deno.test("simulate: rejects bad options with invalid_argument", async () => {
  await assert.rejects(simulate({ nodes: 1 }), (e) => RpcError.is(e, "invalid_argument"));
  await assert.rejects(
    simulate({ nodes: 10, scenario: "nope" as SimScenario }),
    (e) => RpcError.is(e, "invalid_argument"),
  );
  await assert.rejects(simulate({ nodes: 10, loss: 1 }), (e) => RpcError.is(e, "invalid_argument"));
  await assert.rejects(
    simulate({ nodes: 10, bootstrap: "instant" as "preloaded" }),
    (e) => RpcError.is(e, "invalid_argument"),
  );
  await assert.rejects(
    simulate({
      nodes: 10,
      bootstrap: "preloaded",
      createMember: (c) => new ClusterMembership(c),
    }),
    (e) => RpcError.is(e, "invalid_argument"),
  );
});

Deno.test("simulate: a preloaded 300-node cluster is stable (no traffic storm, no suspicion) and a fresh join reaches every node", async () => {
  const r = await simulate({ nodes: 300, scenario: "join", bootstrap: "preloaded", seed: 5 });
  assert.equal(r.bootstrap.mode, "preloaded");
  assert.equal(r.joinReach?.reached, 300, "every preloaded node saw the joiner");
  assert.ok(r.joinReach!.max < 10_000, `join reach ${r.joinReach!.max} ms (virtual)`);
  assert.equal(r.falsePositives.suspicions, 0, "preloaded members are probed and answer");
  assert.equal(r.falsePositives.failed, 0);
  assert.equal(r.protocolErrors.count, 0, r.protocolErrors.last);
  // Steady state after preloading: probes and acks, not a re-gossip of every member.
  assert.ok(r.traffic.udpBytesPerNodePerSec < 1000, `${r.traffic.udpBytesPerNodePerSec} B/s`);
  assert.match(formatSimReport(r), /preloaded/);
});

Deno.test("simulate: 100 nodes join, a fresh join reaches all, equal seeds replay", async () => {
  const a = await simulate({ nodes: 100, scenario: "join", seed: 4 });
  assert.ok(a.bootstrap.converged, "every node saw all 100 alive");
  assert.equal(a.bootstrap.convergence.count, 100);
  assert.equal(a.joinReach?.reached, 100);
  assert.ok(a.joinReach!.max < 10_000, `join reach ${a.joinReach!.max} ms (virtual)`);
  assert.equal(a.falsePositives.failed, 0);
  assert.equal(a.protocolErrors.count, 0, a.protocolErrors.last);
  assert.ok(a.traffic.udpBytesPerNodePerSec > 0);
  // Without a forced GC (no --expose-gc here) a collection mid-run can make the delta 0.
  if (a.heap.gcForced) assert.ok(a.heap.bytesPerNode > 0);
  else assert.ok(a.heap.bytesPerNode >= 0);
  assert.match(formatSimReport(a), /join reach/);
  const b = await simulate({ nodes: 100, scenario: "join", seed: 4 });
  assert.equal(b.events, a.events, "deterministic replay");
  assert.deepEqual(b.joinReach, a.joinReach);
});

Deno.test("simulate: 100 nodes, 10% loss for 2 virtual minutes, no member declared dead", async () => {
  const r = await simulate({
    nodes: 100,
    scenario: "false-positives",
    loss: 0.1,
    durationMs: 120_000,
    seed: 2,
  });
  assert.ok(r.bootstrap.converged);
  assert.equal(r.falsePositives.failed, 0, JSON.stringify(r.falsePositives));
  assert.equal(r.protocolErrors.count, 0, r.protocolErrors.last);
});

Deno.test("simulate: 100 nodes with 5% paused 2 s at a time, lifeguard on vs off", async () => {
  const r = await simulate({ nodes: 100, scenario: "paused", durationMs: 60_000, seed: 3 });
  assert.ok(r.pausesInjected! > 0);
  assert.ok(r.pausedWithoutLifeguard);
  assert.ok(
    r.falsePositives.failed <= r.pausedWithoutLifeguard.failed,
    `lifeguard ${r.falsePositives.failed} vs none ${r.pausedWithoutLifeguard.failed}`,
  );
  assert.equal(r.protocolErrors.count, 0, r.protocolErrors.last);
});

Deno.test("simulate: 1000 nodes converge and a crashed member is declared dead everywhere", async () => {
  const r = await simulate({ nodes: 1000, scenario: "crash", seed: 1 });
  assert.ok(r.bootstrap.converged, "all 1000 nodes saw all 1000 alive");
  assert.equal(r.crash!.reportedBy, 999, "every live node reported NodeFailed");
  assert.ok(r.crash!.firstSuspicionMs <= r.crash!.deadEverywhereMs);
  assert.ok(
    r.crash!.deadEverywhereMs < 60_000,
    `dead everywhere after ${r.crash!.deadEverywhereMs}`,
  );
  assert.equal(r.falsePositives.failed, 0);
  assert.equal(r.protocolErrors.count, 0, r.protocolErrors.last);
});

Deno.test("simulate: 1000 nodes, 10% loss for 30 virtual seconds, no member declared dead", async () => {
  await assertNoFalseFailures({ nodes: 1000, durationMs: 30_000, seed: 5 });
});

Deno.test({
  name: "simulate (slow): 1000 nodes, 10% loss for 10 virtual minutes, no member declared dead",
  ignore: !SLOW,
  fn: async () => {
    await assertNoFalseFailures({ nodes: 1000, durationMs: 600_000, seed: 1 });
  },
});

Deno.test({
  name: "simulate (slow): 100 nodes, 10% loss for one virtual hour, no member declared dead",
  ignore: !SLOW,
  fn: async () => {
    await assertNoFalseFailures({ nodes: 100, durationMs: 3_600_000, seed: 1 });
  },
});
