import assert from "node:assert/strict";
import { Balancer, NodeRegistry, RpcError, WorkerRegistry } from "../mod.ts";
import { FakeMembership } from "./_support/registry_fakes.ts";

function makeBalancer(): Balancer {
  return new Balancer({ strategy: "round_robin", seed: 7 });
}

function cluster(): FakeMembership {
  const m = new FakeMembership("director");
  m.set("director", "alive", { role: "director" });
  m.set("w1", "alive", { role: "worker", zone: "eu-1" });
  m.set("w2", "alive", { role: "worker", zone: "eu-2", gpu: "a100" });
  m.set("w3", "alive", { role: "worker", zone: "us-1" });
  return m;
}

function ids(ws: { id: string }[]): string[] {
  return ws.map((w) => w.id);
}

Deno.test("NodeRegistry lists nodes with state, phi and tags, filters them and gets by id", () => {
  const m = cluster();
  m.set("w3", "suspect", { role: "worker", zone: "us-1" });
  const reg = new NodeRegistry(m);
  assert.deepEqual(ids(reg.nodes()), ["director", "w1", "w2", "w3"]);
  assert.equal(reg.count, 4);
  assert.equal(reg.localId, "director");
  assert.deepEqual(ids(reg.nodes({ filter: "role=worker", states: ["alive"] })), ["w1", "w2"]);
  assert.deepEqual(ids(reg.alive("role=worker")), ["w1", "w2"]);
  const w3 = reg.get("w3")!;
  assert.equal(w3.state, "suspect");
  assert.ok(w3.phi > 8);
  assert.equal(w3.tags.zone, "us-1");
  assert.equal(reg.get("nope"), undefined);
  assert.throws(() => reg.nodes({ filter: "role=" }), (e) => RpcError.is(e, "invalid_argument"));
});

Deno.test("NodeRegistry.subscribe delivers cluster events until the loop breaks", async () => {
  const m = cluster();
  const reg = new NodeRegistry(m);
  const seen: string[] = [];
  const events = reg.subscribe();
  const reader = (async () => {
    for await (const e of events) {
      if ("node" in e) seen.push(`${e.type}:${e.node.id}`);
      if (seen.length === 3) break;
    }
  })();
  m.set("w4", "alive", { role: "worker" });
  m.set("w1", "left", { role: "worker" });
  m.set("w2", "dead", { role: "worker" });
  await reader;
  assert.deepEqual(seen, ["NodeJoined:w4", "NodeLeft:w1", "NodeFailed:w2"]);
});

Deno.test("WorkerRegistry selects only workers matching the filter and spreads calls", () => {
  const reg = new WorkerRegistry(cluster(), { balancer: makeBalancer() });
  try {
    assert.deepEqual(ids(reg.workers("role=worker")), ["w1", "w2", "w3"]);
    assert.deepEqual(ids(reg.workers("role=worker,zone in (eu-1,eu-2)")), ["w1", "w2"]);
    assert.deepEqual(ids(reg.workers({ gpu: true })), ["w2"]);
    assert.equal(reg.count, 4); // default filter: every node serving RPC, including this one
    const picked = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const w = reg.selectWorker("role=worker");
      assert.equal(w.tags.role, "worker");
      picked.set(w.id, (picked.get(w.id) ?? 0) + 1);
    }
    assert.deepEqual([...picked.keys()].sort(), ["w1", "w2", "w3"]);
    const w = reg.selectWorker("zone=eu-1");
    assert.equal(w.id, "w1");
    assert.equal(w.label, "w1");
    assert.match(w.addr, /^127\.0\.0\.1:\d+$/);
  } finally {
    reg.close();
  }
});

Deno.test("WorkerRegistry: failed and left workers leave selection at once", () => {
  const m = cluster();
  const reg = new WorkerRegistry(m, { balancer: makeBalancer() });
  try {
    assert.equal(reg.workers("role=worker").length, 3); // prepares and caches the filter
    m.set("w2", "dead", { role: "worker", zone: "eu-2" });
    for (let i = 0; i < 50; i++) assert.notEqual(reg.selectWorker("role=worker").id, "w2");
    m.set("w3", "left", { role: "worker", zone: "us-1" });
    assert.deepEqual(ids(reg.workers("role=worker")), ["w1"]);
    m.set("w2", "alive", { role: "worker", zone: "eu-2" }); // rejoins
    assert.deepEqual(ids(reg.workers("role=worker")), ["w1", "w2"]);
  } finally {
    reg.close();
  }
});

Deno.test("WorkerRegistry: a failure event wins over a member table that still says alive", () => {
  const m = cluster();
  const reg = new WorkerRegistry(m, { balancer: makeBalancer() });
  try {
    const w1 = m.get("w1")!;
    const failed = { ...w1, state: "dead" as const, stateChangedAt: w1.stateChangedAt + 1 };
    // The event arrives before the table is updated.
    m.dispatchEvent(
      new CustomEvent("NodeFailed", { detail: { type: "NodeFailed", node: failed } }),
    );
    assert.deepEqual(ids(reg.workers("role=worker")), ["w2", "w3"]);
  } finally {
    reg.close();
  }
});

Deno.test("WorkerRegistry: suspect workers are kept by default and dropped with excludeSuspect", () => {
  const m = cluster();
  const keep = new WorkerRegistry(m, { balancer: makeBalancer() });
  const drop = new WorkerRegistry(m, { balancer: makeBalancer(), excludeSuspect: true });
  try {
    assert.equal(drop.workers("role=worker").length, 3);
    m.set("w1", "suspect", { role: "worker", zone: "eu-1" });
    assert.deepEqual(ids(keep.workers("role=worker")), ["w1", "w2", "w3"]);
    assert.deepEqual(ids(drop.workers("role=worker")), ["w2", "w3"]);
    m.set("w1", "alive", { role: "worker", zone: "eu-1" }); // recovers
    assert.deepEqual(ids(drop.workers("role=worker")), ["w1", "w2", "w3"]);
  } finally {
    keep.close();
    drop.close();
  }
});

Deno.test("WorkerRegistry: tag updates re-route and candidate lists are cached per canonical filter", () => {
  const m = cluster();
  const reg = new WorkerRegistry(m, { balancer: makeBalancer() });
  try {
    let prepared = 0;
    const inner = reg.balancer.candidates.bind(reg.balancer);
    reg.balancer.candidates = (list) => (prepared++, inner(list));
    reg.selectWorker("zone=eu-1,role=worker");
    reg.selectWorker("role=worker, zone=eu-1");
    reg.selectWorker({ role: "worker", zone: "eu-1" });
    assert.equal(prepared, 1, "equivalent filters share one prepared candidate set");
    const g = reg.generation;
    m.set("w3", "alive", { role: "worker", zone: "eu-1" }); // moves zone
    assert.ok(reg.generation > g);
    assert.deepEqual(ids(reg.workers("zone=eu-1")), ["w1", "w3"]);
    assert.equal(prepared, 2);
  } finally {
    reg.close();
  }
});

Deno.test("WorkerRegistry: no matching worker is unavailable naming the filter", () => {
  const m = cluster();
  const reg = new WorkerRegistry(m, { balancer: makeBalancer(), includeLocal: false });
  try {
    assert.throws(
      () => reg.selectWorker("role=gpu-worker"),
      (e) => RpcError.is(e, "unavailable") && e.message.includes('"role=gpu-worker"'),
    );
    assert.equal(reg.trySelectWorker("role=director"), undefined); // local node excluded
    assert.throws(() => reg.selectWorker("role in ("), (e) => RpcError.is(e, "invalid_argument"));
    // Excluding every candidate is also unavailable.
    assert.throws(
      () => reg.selectWorker("zone=eu-1", { exclude: new Set(["w1"]) }),
      (e) => RpcError.is(e, "unavailable") && e.message.includes("already tried"),
    );
    assert.equal(reg.selectWorker("role=worker", { exclude: new Set(["w1", "w2"]) }).id, "w3");
  } finally {
    reg.close();
  }
});

Deno.test("WorkerRegistry: nodes without an RPC address are never selected; close stops listening", () => {
  const m = cluster();
  m.set("gossip-only", "alive", { role: "worker" }, "");
  const reg = new WorkerRegistry(m, { balancer: makeBalancer() });
  assert.deepEqual(ids(reg.workers("role=worker")), ["w1", "w2", "w3"]);
  reg.close();
  const g = reg.generation;
  m.set("w9", "alive", { role: "worker" });
  assert.equal(reg.generation, g);
});
