/**
 * Issue 9 items 12 and 13, issue 10 item 1 (gossip side): every bad membership option is
 * `invalid_argument` naming the option as written; durations of 2^31 ms or more (which a timer
 * cannot hold) are refused; an advertised wildcard address is refused with the fix.
 */
import assert from "node:assert/strict";
import { ClusterMembership, type ClusterMembershipOptions, RpcError } from "../mod.ts";
import { SimNetwork } from "../src/membership/sim/mod.ts";

function refused(options: unknown, name: string): void {
  assert.throws(
    () => new ClusterMembership(options as ClusterMembershipOptions),
    (e) => {
      assert.ok(RpcError.is(e, "invalid_argument"), `${JSON.stringify(options)}: ${e}`);
      assert.ok(
        (e as Error).message.includes(name),
        `${JSON.stringify(options)}: message does not name ${name}: ${(e as Error).message}`,
      );
      return true;
    },
  );
}

Deno.test("membership options: durations of 2^31 ms or more are refused, naming the option", () => {
  for (
    const key of [
      "probeIntervalMs",
      "heartbeatIntervalMs",
      "pushPullIntervalMs",
      "gossipIntervalMs",
      "reapIntervalMs",
      "reconnectIntervalMs",
      "retryJoinIntervalMs",
    ]
  ) {
    refused({ [key]: 1e12 }, key);
    refused({ [key]: 2 ** 31 }, key);
    refused({ [key]: Number.NaN }, key);
    refused({ [key]: 0 }, key);
  }
  // The largest timer value is fine.
  new ClusterMembership({ reconnectTimeoutMs: 2 ** 31 - 1 });
});

Deno.test("membership options: every bad option is invalid_argument naming it", () => {
  refused({ seeds: "127.0.0.1:7946" }, "seeds");
  refused({ seeds: [7946] }, "seeds[0]");
  refused({ seeds: ["127.0.0.1"] }, "seeds[0]");
  refused({ seeds: ["ok:1", "fd00::1:7946"] }, "seeds[1]");
  refused({ keyring: "secret" }, "keyring");
  refused({ keyring: { seal() {}, open() {} } }, "keyring");
  refused({ profile: "FAST" }, "profile");
  refused({ profile: "__proto__" }, "profile");
  refused({ id: 5 }, "id");
  refused({ label: 5 }, "label");
  refused({ tags: "role=worker" }, "tags");
  refused({ bindPort: 70000 }, "bindPort");
  refused({ bindHost: 1 }, "bindHost");
  refused({ rpcAddr: 1 }, "rpcAddr");
  refused({ incarnation: -1 }, "incarnation");
  refused({ lifeguard: "yes" }, "lifeguard");
  refused({ reliableProbeFallback: 1 }, "reliableProbeFallback");
  refused({ eventBufferSize: 0 }, "eventBufferSize");
  refused({ transport: {} }, "transport");
  refused({ clock: { now: () => 0 } }, "clock");
  refused({ random: 0.5 }, "random");
  refused({ onUserMessage: "x" }, "onUserMessage");
  refused({ maxMembers: 0 }, "maxMembers");
  refused({ maxSyncRecords: 1.5 }, "maxSyncRecords");
  refused({ retryJoinMax: -1 }, "retryJoinMax");
  refused({ retryJoinIntervalMs: 5000, retryJoinMaxIntervalMs: 1000 }, "retryJoinMaxIntervalMs");
  refused({ probeTimeoutMs: 2000, probeIntervalMs: 1000 }, "probeTimeoutMs");
  refused(null, "options");
  // Nested callers name the option as their users wrote it.
  refused({ optionPrefix: "membership.", probeIntervalMs: 1e12 }, "membership.probeIntervalMs");
  refused({ optionPrefix: "membership.", keyring: 1 }, "membership.keyring");
});

Deno.test("membership options: a wildcard advertiseAddr is refused with the fix", async () => {
  refused({ advertiseAddr: "0.0.0.0:7946" }, "advertiseAddr");
  refused({ advertiseAddr: "[::]:7946" }, "advertiseAddr");
  refused({ advertiseAddr: "10.0.0.1" }, "advertiseAddr");
  assert.throws(
    () => new ClusterMembership({ advertiseAddr: "0.0.0.0:7946" }),
    /routable address/,
  );
  // A transport bound to a wildcard without advertiseAddr: start() refuses.
  const net = new SimNetwork();
  const transport = net.createTransport("0.0.0.0:7946");
  const m = new ClusterMembership({ transport, clock: transport.clock, profile: "LOCAL" });
  await assert.rejects(m.start(), (e) => {
    assert.ok(RpcError.is(e, "invalid_argument"), String(e));
    assert.match((e as Error).message, /advertiseAddr/);
    return true;
  });
  await m.shutdown();
});
