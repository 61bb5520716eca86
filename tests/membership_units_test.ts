/**
 * Unit tests of the protocol mechanisms through their host seam (`ProtocolHost`): the prober,
 * the phi monitors, push-pull and partition detection, each driven by a fake host with a manual
 * clock, no transport and no cluster.
 */
import assert from "node:assert/strict";
import { RpcError } from "../src/errors.ts";
import { Awareness } from "../src/membership/awareness.ts";
import {
  type AliveMessage,
  ByteWriter,
  type DeadMessage,
  decodeBody,
  decodePushPull,
  type GossipMessage,
  type LeaveMessage,
  type SuspectMessage,
  writeMessage,
  writePushPull,
} from "../src/membership/codec.ts";
import { type MembershipConfig, resolveConfig } from "../src/membership/config.ts";
import { MemberRecord, MemberTable } from "../src/membership/member_table.ts";
import { Monitors, type PhiDetector } from "../src/membership/monitors.ts";
import { PartitionDetector } from "../src/membership/partition.ts";
import { AckRegistry, Prober } from "../src/membership/probe.ts";
import type { ProtocolHost } from "../src/membership/protocol_host.ts";
import { PushPull } from "../src/membership/push_pull.ts";
import type { Clock } from "../src/membership/transport.ts";

/** A clock whose time moves only in `advance`, firing due timers in order. */
class ManualClock implements Clock {
  #now = 0;
  #next = 1;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): number {
    const h = this.#next++;
    this.#timers.set(h, { at: this.#now + ms, fn });
    return h;
  }
  clearTimeout(h: number): void {
    this.#timers.delete(h);
  }
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!due || e[1].at < due[1].at)) due = e;
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].fn();
    }
    this.#now = end;
  }
}

interface Sent {
  addr: string;
  messages: readonly GossipMessage[];
  piggyback: boolean | undefined;
}

/** A host over a member table of `local` plus `others` (all alive), recording what it is asked. */
function fakeHost(others: string[], options: MembershipConfig = {}) {
  const clock = new ManualClock();
  const config = resolveConfig({ profile: "LOCAL", ...options });
  const table = new MemberTable(new MemberRecord("local", "10.0.0.1:1", "", 0, "alive", {}, 0));
  for (const id of others) {
    table.applyAlive(alive(id), 0);
  }
  const sent: Sent[] = [];
  const suspected: { id: string; incarnation: number }[] = [];
  const alives: { m: AliveMessage; merged: boolean | undefined }[] = [];
  const deaths: (DeadMessage | LeaveMessage)[] = [];
  const verdicts: SuspectMessage[] = [];
  let seq = 0;
  let random = 0.37;
  const state = {
    running: true,
    request: (_addr: string, _body: Uint8Array, _ms: number): Promise<Uint8Array> =>
      Promise.reject(new RpcError("unavailable", "no reliable channel in this test")),
  };
  const host: ProtocolHost = {
    config,
    clock,
    random: () => (random = (random * 9301 + 0.49297) % 1),
    table,
    awareness: new Awareness(config.awarenessMaxMultiplier, config.lifeguard),
    nextSeq: () => ++seq,
    send: (addr, messages, piggyback) => sent.push({ addr, messages, piggyback }),
    suspectLocally: (target, incarnation) => suspected.push({ id: target.id, incarnation }),
    handleAlive: (m, merged) => alives.push({ m, merged }),
    handleDead: (m) => deaths.push(m),
    wrap: (body) => Promise.resolve(body),
    unwrap: (packet) => Promise.resolve(packet[0] === 0xff ? undefined : packet),
    request: (addr, body, ms) => state.request(addr, body, ms),
    get running() {
      return state.running;
    },
    verifyVerdict: (m) => verdicts.push(m),
    yieldNow: () => Promise.resolve(),
    refusal: (_packet, what) => new RpcError("unauthenticated", `${what} refused`),
  };
  return { host, clock, table, sent, suspected, alives, deaths, verdicts, state };
}

function alive(id: string, incarnation = 0): AliveMessage {
  return {
    type: "alive",
    node: id,
    incarnation,
    gossipAddr: `addr-${id}`,
    rpcAddr: "",
    tags: {},
  };
}

/** The messages of type `type` sent, with their addresses. */
function sentOf<T extends GossipMessage["type"]>(sent: Sent[], type: T) {
  const out: { addr: string; m: Extract<GossipMessage, { type: T }> }[] = [];
  for (const s of sent) {
    for (const m of s.messages) {
      if (m.type === type) out.push({ addr: s.addr, m: m as Extract<GossipMessage, { type: T }> });
    }
  }
  return out;
}

// ------------------------------------------------------------------------------- probe.ts

Deno.test("probe: an acked direct ping succeeds, lowers the health score and suspects nobody", () => {
  const { host, clock, sent, suspected } = fakeHost(["a", "b", "c", "d"]);
  const acks = new AckRegistry(host);
  const prober = new Prober(host, acks);
  host.awareness.apply(2);
  const target = host.table.get("a")!;
  let result: boolean | undefined;
  prober.probe(target, (ok) => result = ok);
  const pings = sentOf(sent, "ping");
  assert.equal(pings.length, 1);
  assert.equal(pings[0].addr, "addr-a");
  assert.equal(pings[0].m.target, "a");
  prober.receive({ type: "ack", seq: pings[0].m.seq }, "addr-a");
  assert.equal(result, true);
  assert.equal(host.awareness.score, 1);
  clock.advance(10_000);
  assert.equal(sentOf(sent, "ping-req").length, 0, "no indirect probe after an ack");
  assert.deepEqual(suspected, []);
  assert.equal(prober.counters.probes, 1);
  assert.equal(prober.counters.probeFailures, 0);
});

Deno.test("probe: a silent target gets ping-reqs after probeTimeoutMs, then is suspected at its incarnation", () => {
  const { host, clock, sent, suspected } = fakeHost(["a", "b", "c", "d"], {
    reliableProbeFallback: false,
  });
  const prober = new Prober(host, new AckRegistry(host));
  host.table.applyAlive(alive("a", 7), 0);
  let result: boolean | undefined;
  prober.probe(host.table.get("a")!, (ok) => result = ok);
  const seq = sentOf(sent, "ping")[0].m.seq;
  clock.advance(host.config.probeTimeoutMs - 1);
  assert.equal(sentOf(sent, "ping-req").length, 0);
  clock.advance(1);
  const reqs = sentOf(sent, "ping-req");
  assert.equal(reqs.length, 3, "indirectChecks helpers");
  assert.deepEqual(new Set(reqs.map((r) => r.addr)), new Set(["addr-b", "addr-c", "addr-d"]));
  for (const r of reqs) {
    assert.equal(r.m.seq, seq);
    assert.equal(r.m.target, "a");
    assert.equal(r.m.nack, true);
  }
  // One helper answers with a nack: the other two missing nacks count against our health.
  prober.receive({ type: "nack", seq }, "addr-b");
  clock.advance(host.config.probeIntervalMs);
  assert.equal(result, false);
  assert.deepEqual(suspected, [{ id: "a", incarnation: 7 }]);
  assert.equal(host.awareness.score, 2);
  assert.equal(prober.counters.indirectProbes, 1);
  assert.equal(prober.counters.nacksReceived, 1);
  assert.equal(prober.counters.probeFailures, 1);
});

Deno.test("probe: an indirect ack through a helper saves the target", () => {
  const { host, clock, sent, suspected } = fakeHost(["a", "b", "c"], {
    reliableProbeFallback: false,
  });
  const prober = new Prober(host, new AckRegistry(host));
  let result: boolean | undefined;
  prober.probe(host.table.get("a")!, (ok) => result = ok);
  clock.advance(host.config.probeTimeoutMs);
  const req = sentOf(sent, "ping-req")[0];
  prober.receive({ type: "ack", seq: req.m.seq }, req.addr);
  clock.advance(10_000);
  assert.equal(result, true);
  assert.deepEqual(suspected, []);
});

Deno.test("probe: the reliable fallback ping over request() saves a target whose datagrams are lost", async () => {
  const { host, clock, sent, suspected, state } = fakeHost(["a", "b"]);
  const prober = new Prober(host, new AckRegistry(host));
  const requested: string[] = [];
  state.request = (addr, body) => {
    requested.push(addr);
    const ping = decodeBody(body)!.messages[0];
    assert.equal(ping.type, "ping");
    const w = new ByteWriter(32);
    writeMessage(w, { type: "ack", seq: (ping as { seq: number }).seq });
    return Promise.resolve(w.toBytes());
  };
  let result: boolean | undefined;
  prober.probe(host.table.get("a")!, (ok) => result = ok);
  clock.advance(host.config.probeTimeoutMs);
  for (let i = 0; i < 20 && result === undefined; i++) await Promise.resolve();
  assert.deepEqual(requested, ["addr-a"]);
  assert.equal(result, true, "the ack over the reliable channel settles the probe");
  clock.advance(10_000);
  assert.deepEqual(suspected, []);
  assert.equal(prober.counters.reliablePings, 1);
  assert.ok(sentOf(sent, "ping-req").length > 0);
});

Deno.test("probe: nextTarget visits every live member once per round, never this node", () => {
  const { host } = fakeHost(["a", "b", "c", "d", "e"]);
  const prober = new Prober(host, new AckRegistry(host));
  for (let round = 0; round < 3; round++) {
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) seen.push(prober.nextTarget()!.id);
    assert.deepEqual([...seen].sort(), ["a", "b", "c", "d", "e"], `round ${round}`);
  }
  host.table.applyDead({ type: "dead", node: "c", incarnation: 0, from: "x" }, 0);
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) seen.add(prober.nextTarget()!.id);
  assert.equal(seen.has("c"), false, "dead members are not probed");
});

Deno.test("probe: a ping-req pings the target, forwards its ack, or a nack after the timeout", () => {
  const { host, clock, sent } = fakeHost(["a", "b"]);
  const prober = new Prober(host, new AckRegistry(host));
  prober.receive(
    { type: "ping-req", seq: 900, target: "a", targetAddr: "addr-a", nack: true },
    "addr-b",
  );
  const ping = sentOf(sent, "ping").find((p) => p.addr === "addr-a")!;
  assert.equal(ping.m.target, "a");
  assert.notEqual(ping.m.seq, 900, "a fresh seq of our own");
  // Lifeguard: the requester also gets our alive record of the target.
  assert.equal(sentOf(sent, "alive").find((a) => a.addr === "addr-b")?.m.node, "a");
  prober.receive({ type: "ack", seq: ping.m.seq }, "addr-a");
  assert.deepEqual(sentOf(sent, "ack").map((a) => [a.addr, a.m.seq]), [["addr-b", 900]]);

  sent.length = 0;
  prober.receive(
    { type: "ping-req", seq: 901, target: "a", targetAddr: "addr-a", nack: true },
    "addr-b",
  );
  clock.advance(host.config.probeTimeoutMs);
  assert.deepEqual(sentOf(sent, "nack").map((a) => [a.addr, a.m.seq]), [["addr-b", 901]]);
  assert.equal(prober.counters.pingReqsServed, 2);
});

Deno.test("probe: a ping is answered with an ack; a ping naming another member is counted, not answered", () => {
  const { host, sent } = fakeHost(["a"]);
  const prober = new Prober(host, new AckRegistry(host));
  prober.receive({ type: "ping", seq: 5, target: "local" }, "addr-a");
  prober.receive({ type: "ping", seq: 6, target: "" }, "addr-a");
  prober.receive({ type: "ping", seq: 7, target: "someone-else" }, "addr-a");
  assert.deepEqual(sentOf(sent, "ack").map((a) => a.m.seq), [5, 6]);
  assert.deepEqual(sent.map((s) => s.piggyback), [true, false], "unnamed pings carry no gossip");
  assert.equal(prober.counters.droppedMisdirected, 1);
});

Deno.test("probe: the last chance pings the suspect with its suspicion and asks peers with the same seq", () => {
  const { host, clock, sent } = fakeHost(["a", "b", "c", "d"]);
  host.table.applySuspect({ type: "suspect", node: "a", incarnation: 0, from: "b" }, 0);
  const acks = new AckRegistry(host);
  const prober = new Prober(host, acks);
  const outcome: string[] = [];
  prober.lastChance(host.table.get("a")!, () => outcome.push("answered"), () => {
    outcome.push("silent");
  });
  const toSuspect = sent.find((s) => s.addr === "addr-a")!;
  assert.deepEqual(toSuspect.messages.map((m) => m.type), ["suspect", "ping"]);
  const seq = (toSuspect.messages[1] as { seq: number }).seq;
  const reqs = sentOf(sent, "ping-req");
  assert.equal(reqs.length, 3);
  for (const r of reqs) assert.deepEqual([r.m.seq, r.m.target, r.m.nack], [seq, "a", false]);
  clock.advance(host.config.probeTimeoutMs);
  assert.deepEqual(outcome, ["silent"]);

  sent.length = 0;
  prober.lastChance(host.table.get("a")!, () => outcome.push("answered"), () => {
    outcome.push("silent");
  });
  const seq2 = sentOf(sent, "ping")[0].m.seq;
  acks.ack(seq2);
  clock.advance(10_000);
  assert.deepEqual(outcome, ["silent", "answered"]);
});

// ---------------------------------------------------------------------------- monitors.ts

/** A phi detector whose phi is set by the test; records heartbeats. */
class StubDetector implements PhiDetector {
  readonly beats: string[] = [];
  readonly phis = new Map<string, number>();
  heartbeat(id: string): void {
    this.beats.push(id);
    if (!this.phis.has(id)) this.phis.set(id, 0);
  }
  phi(id: string): number {
    return this.phis.get(id) ?? 0;
  }
  remove(id: string): void {
    this.phis.delete(id);
  }
  has(id: string): boolean {
    return this.phis.has(id);
  }
}

Deno.test("monitors: heartbeats go to the K ring successors; acks feed phi; phi over the threshold starts one probe", () => {
  const { host, sent, clock } = fakeHost(["a", "b", "m", "n", "x", "y"], {
    monitoredMembers: 2,
  });
  const acks = new AckRegistry(host);
  const prober = new Prober(host, acks);
  const detector = new StubDetector();
  const monitors = new Monitors(host, acks, prober, detector, "p/");
  monitors.tick();
  const successors = host.table.successors("local", 2);
  assert.deepEqual([...monitors.monitored], successors);
  const beats = sentOf(sent, "ping");
  assert.deepEqual(beats.map((b) => b.addr).sort(), successors.map((id) => `addr-${id}`).sort());
  for (const b of beats) assert.equal(b.m.target, "", "heartbeats are unnamed pings");
  for (const b of beats) acks.ack(b.m.seq);
  assert.deepEqual(detector.beats.sort(), successors.map((id) => `p/${id}`).sort());
  assert.equal(monitors.heartbeats, 2);

  sent.length = 0;
  detector.phis.set(`p/${successors[0]}`, host.config.phiThreshold + 1);
  assert.equal(monitors.phi(successors[0]), host.config.phiThreshold + 1);
  monitors.tick();
  monitors.tick(); // still probing: not a second probe
  assert.equal(monitors.phiProbes, 1);
  assert.equal(prober.counters.probes, 1);
  const named = sentOf(sent, "ping").filter((p) => p.m.target === successors[0]);
  assert.equal(named.length, 1, "the phi-triggered probe's named ping");
  clock.advance(0);
  monitors.clear();
  assert.deepEqual([...monitors.monitored], []);
  assert.equal(detector.has(`p/${successors[0]}`), false, "clear() forgets the detector state");
});

// --------------------------------------------------------------------------- push_pull.ts

function syncBody(records: Parameters<typeof writePushPull>[1]["records"], join = false) {
  const w = new ByteWriter(256);
  writePushPull(w, { type: "push-pull", join, records });
  return w.toBytes();
}

Deno.test("push-pull: a served sync merges alive, left and suspect/dead records, then replies with our state", async () => {
  const { host, alives, deaths, verdicts } = fakeHost(["a"]);
  const pp = new PushPull(host);
  const rec = (node: string, state: "alive" | "left" | "suspect" | "dead", incarnation = 3) => ({
    node,
    gossipAddr: `addr-${node}`,
    rpcAddr: "",
    incarnation,
    state,
    tags: { k: "v" },
  });
  const reply = await pp.handleBody(
    syncBody([rec("b", "alive"), rec("c", "left"), rec("d", "suspect"), rec("e", "dead")], true),
  );
  assert.deepEqual(alives, [{
    m: {
      type: "alive",
      node: "b",
      incarnation: 3,
      gossipAddr: "addr-b",
      rpcAddr: "",
      tags: { k: "v" },
    },
    merged: false, // a join request is announced
  }]);
  assert.deepEqual(deaths, [{ type: "leave", node: "c", incarnation: 3 }]);
  assert.deepEqual(verdicts.map((v) => [v.node, v.from]), [["d", "local"], ["e", "local"]]);
  assert.equal(pp.counters.pushPullsServed, 1);
  // The reply is our own state (wrap is the identity here).
  const ours = decodePushPull(reply, 0, 100)!;
  assert.deepEqual(ours.records.map((r) => r.node).sort(), ["a", "local"]);
});

Deno.test("push-pull: a sync claiming more than maxSyncRecords is refused before decoding, and counted", async () => {
  const { host, alives } = fakeHost([], { maxSyncRecords: 2 });
  const pp = new PushPull(host);
  const records = ["a", "b", "c"].map((node) => ({
    node,
    gossipAddr: "x:1",
    rpcAddr: "",
    incarnation: 0,
    state: "alive" as const,
    tags: {},
  }));
  await assert.rejects(
    () => pp.handleBody(syncBody(records)),
    (e) => e instanceof RpcError && e.code === "resource_exhausted",
  );
  assert.equal(pp.counters.syncsRefused, 1);
  assert.deepEqual(alives, []);
  await assert.rejects(
    () => pp.handleBody(new Uint8Array([8, 0, 0, 0, 0, 1, 9])),
    (e) => e instanceof RpcError && e.code === "invalid_argument",
  );
});

Deno.test("push-pull: exchange merges the reply; failures and refusals are counted with the right error", async () => {
  const { host, alives, state } = fakeHost([]);
  const pp = new PushPull(host);
  const asked: string[] = [];
  state.request = (addr) => {
    asked.push(addr);
    return Promise.resolve(syncBody([{
      node: "peer",
      gossipAddr: addr,
      rpcAddr: "",
      incarnation: 1,
      state: "alive",
      tags: {},
    }]));
  };
  const m = await pp.exchange("peer:1", true, 1000);
  assert.deepEqual(asked, ["peer:1"]);
  assert.equal(m.records.length, 1);
  assert.deepEqual(alives.map((a) => [a.m.node, a.merged]), [["peer", true]]);
  assert.equal(pp.counters.pushPulls, 1);

  state.request = () => Promise.reject(new Error("connection refused"));
  await assert.rejects(
    () => pp.exchange("peer:1", false, 1000),
    (e) => e instanceof RpcError && e.code === "unavailable",
  );
  state.request = () => Promise.resolve(new Uint8Array([0xff, 1, 2]));
  await assert.rejects(
    () => pp.exchange("peer:1", false, 1000),
    (e) => e instanceof RpcError && e.code === "unauthenticated",
  );
  assert.equal(pp.counters.pushPullFailures, 2);
  assert.equal(pp.pickPeer(), undefined, "alone: nobody to sync with");
});

// --------------------------------------------------------------------------- partition.ts

Deno.test("partition: losing a majority of the stable view is detected once, and healed when it returns", () => {
  const { table } = fakeHost(["a", "b", "c", "d"]);
  const pd = new PartitionDetector();
  const stable = 1000;
  assert.equal(pd.check(table, 0, stable), undefined);
  assert.equal(pd.check(table, stable, stable), undefined, "the view becomes stable");
  assert.deepEqual([...pd.stableView].sort(), ["a", "b", "c", "d", "local"]);
  for (const id of ["a", "b", "c"]) {
    table.applySuspect({ type: "suspect", node: id, incarnation: 0, from: "x" }, 1100);
  }
  const change = pd.check(table, 1200, stable);
  assert.equal(change?.type, "detected");
  if (change?.type === "detected") {
    assert.deepEqual(change.unreachable.sort(), ["a", "b", "c"]);
    assert.deepEqual(change.reachable.sort(), ["d", "local"]);
  }
  assert.equal(pd.partitioned, true);
  assert.equal(pd.check(table, 5000, stable), undefined, "reported once");
  for (const id of ["a", "b"]) table.applyAlive(alive(id, 1), 6000);
  const healed = pd.check(table, 6000, stable);
  assert.equal(healed?.type, "healed");
  assert.deepEqual([pd.detected, pd.healed, pd.partitioned], [1, 1, false]);
});

Deno.test("partition: a node that is leaving itself reports no partition while the others go", () => {
  // Seen in the scale bench's shutdowns: the caller left and its leave was lost, the other
  // worker left, and this worker, leaving too, counted the caller alone: "partition detected".
  const { table } = fakeHost(["caller", "w2"]);
  const pd = new PartitionDetector();
  pd.check(table, 0, 1000);
  pd.check(table, 1000, 1000);
  table.applyDead({ type: "leave", node: "w2", incarnation: 0 }, 1100);
  table.applySuspect({ type: "suspect", node: "caller", incarnation: 0, from: "x" }, 1100);
  table.setLocalState("left", 1150);
  assert.equal(pd.check(table, 1200, 1000), undefined);
  assert.equal(pd.detected, 0);
});

Deno.test("partition: members that leave gracefully or fail one at a time are no partition", () => {
  const { table } = fakeHost(["a", "b", "c", "d"]);
  const pd = new PartitionDetector();
  pd.check(table, 0, 1000);
  pd.check(table, 1000, 1000);
  for (const id of ["a", "b", "c"]) {
    table.applyDead({ type: "leave", node: id, incarnation: 0 }, 1100);
  }
  assert.equal(pd.check(table, 1200, 1000), undefined, "left members do not count");
  const { table: t2 } = fakeHost(["a", "b", "c", "d"]);
  const pd2 = new PartitionDetector();
  pd2.check(t2, 0, 1000);
  pd2.check(t2, 1000, 1000);
  let now = 1000;
  for (const id of ["a", "b", "c"]) {
    t2.applyDead({ type: "dead", node: id, incarnation: 0, from: "x" }, now);
    // The view re-stabilises between failures.
    assert.equal(pd2.check(t2, now, 1000), undefined);
    now += 1000;
    pd2.check(t2, now, 1000);
  }
  assert.equal(pd2.detected, 0);
});
