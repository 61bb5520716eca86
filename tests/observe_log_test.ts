/** Join failures, retries and success are logged from the membership's join status. */
import assert from "node:assert/strict";
import { ClusterMembership, createLogger, logMembership, type LogRecord } from "../mod.ts";
import { waitFor } from "./_support/wait.ts";

Deno.test("logMembership: failed join attempts warn with the last error, then 'joined cluster' once a seed is up", async () => {
  // Learn a free gossip port for the seed that starts late.
  const probe = new ClusterMembership({ profile: "LOCAL", bindHost: "127.0.0.1", bindPort: 0 });
  await probe.start();
  const seedAddr = probe.localAddr;
  const seedPort = Number(seedAddr.slice(seedAddr.lastIndexOf(":") + 1));
  await probe.shutdown();

  const records: LogRecord[] = [];
  const late = new ClusterMembership({
    profile: "LOCAL",
    bindHost: "127.0.0.1",
    bindPort: 0,
    seeds: [seedAddr],
  });
  await late.start();
  const stop = logMembership(late, createLogger((r) => records.push(r), "info"), {
    intervalMs: 100,
  });
  let seed: ClusterMembership | undefined;
  try {
    await waitFor(
      () => records.some((r) => r.msg === "join attempts failed"),
      "a join-failure warning",
    );
    const warn = records.find((r) => r.msg === "join attempts failed")!;
    assert.equal(warn.level, "warn");
    assert.ok((warn.fields.attempts as number) >= 1);
    assert.ok(String(warn.fields.error).length > 0, "the warning says why");
    assert.ok(!records.some((r) => r.msg === "joined cluster"));
    seed = new ClusterMembership({ profile: "LOCAL", bindHost: "127.0.0.1", bindPort: seedPort });
    await seed.start();
    await waitFor(() => records.some((r) => r.msg === "joined cluster"), "'joined cluster'");
    assert.equal(records.find((r) => r.msg === "joined cluster")!.level, "info");
  } finally {
    stop();
    await late.shutdown();
    await seed?.shutdown();
  }
});

Deno.test("createLogger: an unknown level is invalid_argument naming 'level'", () => {
  assert.throws(
    () => createLogger(() => {}, "verbose" as never),
    (e: Error) => (e as { code?: string }).code === "invalid_argument" && /level/.test(e.message),
  );
});
