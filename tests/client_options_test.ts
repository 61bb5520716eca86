/**
 * Bad options of ClusterClient, WorkerRegistry, Director and calls (issue 9, item 13): each is
 * `invalid_argument` naming the option as the user wrote it, never a raw `TypeError`, a silently
 * wrong timer, or a filter that matches everything.
 */
import assert from "node:assert/strict";
import { ClusterClient, Director, RpcError, WorkerRegistry } from "../mod.ts";
import { FakeMembership } from "./_support/registry_fakes.ts";

function rejectsNaming(f: () => unknown, name: string): void {
  assert.throws(
    f,
    (e) => RpcError.is(e, "invalid_argument") && e.message.startsWith(`${name} must be`),
    `expected invalid_argument naming ${name}`,
  );
}

Deno.test("ClusterClient: every bad option is invalid_argument naming it", async () => {
  const m = new FakeMembership("me");
  m.set("w1", "alive", { role: "worker" }, "127.0.0.1:4000");
  const registry = new WorkerRegistry(m);
  const make = (o: unknown) => () => new ClusterClient(registry, o as never);
  const cases: [string, unknown][] = [
    ["failureCodes", 5],
    ["failureCodes[1]", ["unavailable", "nope"]],
    ["retryBudget", null],
    ["retryBudget.percentCanRetry", { percentCanRetry: 2 }],
    ["retryBudget.ttlMs", { ttlMs: 2 ** 31 }],
    ["outlier", "5"],
    ["outlier.consecutiveFailures", { consecutiveFailures: 0 }],
    ["outlier.maxEjectionMs", { baseEjectionMs: 2000, maxEjectionMs: 1000 }],
    ["defaultTimeoutMs", NaN],
    ["defaultTimeoutMs", 2 ** 31],
    ["idleTimeoutMs", "1000"],
    ["connectTimeoutMs", 0],
    ["maxAttempts", 1.5],
    ["perTryTimeoutMs", -1],
    ["hedging", true],
    ["hedging.percentile", { percentile: 100 }],
    ["hedging.delayMs", { delayMs: Infinity }],
    ["livenessProbeAfterMs", 2 ** 40],
    ["livenessProbeTimeoutMs", 0],
    ["maxWorkerStats", 0],
    ["shareEndpoint", "yes"],
    ["lanes", 0],
    ["secret", 42],
    ["now", 5],
    ["connect", {}],
    ["defaultFilter", new Date()],
    ["defaultFilter", ["role=worker"]],
  ];
  for (const [name, value] of cases) {
    const top = name.split(/[.[]/)[0];
    rejectsNaming(make({ [top]: value }), name);
  }
  rejectsNaming(() => new ClusterClient(registry, null as never), "ClusterClient options");
  const client = new ClusterClient(registry, { connect: () => new Promise(() => {}) });
  try {
    // Call options.
    for (
      const [name, o] of [
        ["timeoutMs", { timeoutMs: 2 ** 31 }],
        ["timeoutMs", { timeoutMs: NaN }],
        ["perTryTimeoutMs", { idempotent: true, perTryTimeoutMs: 0 }],
        ["deadline", { deadline: "soon" }],
        ["filter", { filter: new Date() }],
      ] as const
    ) {
      await assert.rejects(
        client.callWorker("x", 1, o as never),
        (e) => RpcError.is(e, "invalid_argument") && e.message.startsWith(`${name} must be`),
        name,
      );
    }
  } finally {
    await client.close();
    registry.close();
  }
});

Deno.test("a Date (or an array, or a class instance) as a filter is rejected, not matched against every worker", () => {
  const m = new FakeMembership("me");
  m.set("w1", "alive", { role: "worker" }, "127.0.0.1:4000");
  const registry = new WorkerRegistry(m);
  try {
    rejectsNaming(() => registry.workers(new Date() as never), "filter");
    rejectsNaming(() => registry.selectWorker(["role=worker"] as never), "filter");
    rejectsNaming(() => registry.workers(new Map() as never), "filter");
    assert.equal(registry.workers({ role: "worker" }).length, 1, "plain objects still work");
    assert.equal(registry.workers(Object.assign(Object.create(null), { role: "x" })).length, 0);
  } finally {
    registry.close();
  }
});

Deno.test("WorkerRegistry and Director: bad options are invalid_argument naming them", async () => {
  const m = new FakeMembership("me");
  const cases: [string, unknown][] = [
    ["defaultFilter", new Date()],
    ["excludeSuspect", "yes"],
    ["includeLocal", 1],
    ["weightTag", 7],
    ["maxCachedFilters", 0],
    ["seed", "1"],
    ["tieStreak", 0],
    ["balancer", {}],
  ];
  for (const [name, value] of cases) {
    rejectsNaming(() => new WorkerRegistry(m, { [name]: value } as never), name);
  }
  rejectsNaming(() => new WorkerRegistry(m, 5 as never), "WorkerRegistry options");

  const registry = new WorkerRegistry(m);
  const client = new ClusterClient(registry);
  try {
    const start = (o: Record<string, unknown>) =>
      Director.start({ client, server: { port: 0 }, ...o } as never);
    for (
      const [name, o] of [
        ["client", { client: {} }],
        ["filter", { filter: new Date() }],
        ["idempotent", { idempotent: "true" }],
        ["forwardUnknown", { forwardUnknown: 0 }],
        ["allow", { allow: "echo" }],
        ["allow[1]", { allow: ["echo", 3] }],
        ["methods[0]", { methods: [5] }],
        ["methods.compute.timeoutMs", { methods: { compute: { timeoutMs: 2 ** 31 } } }],
        ["methods.compute.filter", { methods: { compute: { filter: new Date() } } }],
        ["methods.compute.key", { methods: { compute: { key: "k" } } }],
      ] as const
    ) {
      await assert.rejects(
        start(o),
        (e) => RpcError.is(e, "invalid_argument") && e.message.startsWith(`${name} must be`),
        name,
      );
    }
  } finally {
    await client.close();
    registry.close();
  }
});
