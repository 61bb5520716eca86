import assert from "node:assert/strict";
import { Balancer, MAX_TIE_STREAK, RpcError, type StrategyName } from "../mod.ts";
import { sharedCore } from "../wasm/loader.ts";

const WORKERS = (n: number) => Array.from({ length: n }, (_, i) => `worker-${i}`);

function balancer(strategy: StrategyName, ids: string[], seed = 42, now?: () => number): Balancer {
  const b = new Balancer({ strategy, seed, now });
  for (const id of ids) b.add(id);
  return b;
}

function counts(picks: (string | undefined)[]): Map<string | undefined, number> {
  const m = new Map<string | undefined, number>();
  for (const p of picks) m.set(p, (m.get(p) ?? 0) + 1);
  return m;
}

Deno.test("round_robin: 1000 picks over 3 workers differ by at most 1", () => {
  const ids = WORKERS(3);
  const b = balancer("round_robin", ids);
  const set = b.candidates(ids);
  const c = counts(Array.from({ length: 1000 }, () => b.select(set)));
  assert.deepEqual([...c.keys()].sort(), ids);
  const v = [...c.values()];
  assert.ok(Math.max(...v) - Math.min(...v) <= 1, JSON.stringify([...c]));
  // In order, one cursor per set.
  const other = b.candidates(ids);
  assert.deepEqual([b.select(other), b.select(other), b.select(other)], ids);
});

function checkLeastConnectionsStreaks(tieStreak: number | undefined, streak: number): void {
  const ids = WORKERS(8);
  const b = new Balancer({ strategy: "least_connections", seed: 7, tieStreak });
  for (const id of ids) b.add(id);
  assert.equal(b.tieStreak, streak);
  const set = b.candidates(ids);
  let seed = 99;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const inFlight: string[] = [];
  const picked = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    if (inFlight.length && rand() < 0.45) {
      const k = Math.floor(rand() * inFlight.length);
      b.finish(inFlight.splice(k, 1)[0], 5, true);
      continue;
    }
    const id = b.select(set)!;
    const min = Math.min(...ids.map((w) => b.active(w)));
    assert.equal(b.active(id), min, `picked ${id} with ${b.active(id)} active, min is ${min}`);
    picked.add(id);
    b.start(id);
    inFlight.push(id);
  }
  assert.equal(picked.size, 8);
  // All idle: every pick is a tie. Runs of exactly `streak` on one worker, each followed by a
  // different worker, chosen at random (not always the next or the first candidate).
  for (const id of inFlight) b.finish(id, 5, true);
  const picks = Array.from({ length: streak * 100 }, () => b.select(set)!);
  const runs: [string, number][] = [];
  for (const id of picks) {
    if (runs.length && runs[runs.length - 1][0] === id) runs[runs.length - 1][1]++;
    else runs.push([id, 1]);
  }
  // (The first run finishes a streak begun before; the last one is cut off.)
  assert.ok(runs[0][1] <= streak && runs[runs.length - 1][1] <= streak, JSON.stringify(runs));
  assert.ok(runs.slice(1, -1).every(([, n]) => n === streak), JSON.stringify(runs));
  assert.ok(runs.length >= 100, `${picks.length} picks in ${runs.length} runs`);
  const c = counts(runs.map(([id]) => id));
  assert.equal(c.size, 8, "every worker gets streaks");
  const next = new Set(runs.slice(1).map(([id], i) => ids.indexOf(id) - ids.indexOf(runs[i][0])));
  assert.ok(next.size > 3, `the worker after a streak varies: steps ${[...next]}`);
  // tieStreak 1: every tie at random, runs rarely longer than a few.
  const r1 = new Balancer({ strategy: "least_connections", seed: 7, tieStreak: 1 });
  for (const id of ids) r1.add(id);
  const set1 = r1.candidates(ids);
  const picks1 = Array.from({ length: 800 }, () => r1.select(set1)!);
  const changes = picks1.filter((id, i) => i > 0 && id !== picks1[i - 1]).length;
  assert.ok(changes > 600, `${changes} changes in 800 picks`);
  // A busier last pick is not stuck to: a tie-free least-loaded worker wins at once.
  const last = picks[picks.length - 1];
  b.start(last);
  assert.notEqual(b.select(set), last);
}

Deno.test("least_connections: always picks a least-loaded worker; by default ties stay on the last pick for a streak of 1023, then rotate at random", () => {
  checkLeastConnectionsStreaks(undefined, MAX_TIE_STREAK);
});

Deno.test("least_connections: tieStreak 16 keeps ties on the last pick for exactly 16 picks", () => {
  checkLeastConnectionsStreaks(16, 16);
});

Deno.test("least_connections: a streak ends after tieStreakMs (default 250 ms) even before tieStreak picks; 0 means no time bound", () => {
  let t = 0;
  const ids = WORKERS(4);
  const runsOver = (tieStreakMs: number | undefined, stepMs: number, picks: number) => {
    const b = new Balancer({ strategy: "least_connections", seed: 3, now: () => t, tieStreakMs });
    for (const id of ids) b.add(id);
    const set = b.candidates(ids);
    const runs: number[] = [];
    let last: string | undefined;
    for (let i = 0; i < picks; i++) {
      const id = b.select(set)!;
      if (id === last) runs[runs.length - 1]++;
      else runs.push(1);
      last = id;
      t += stepMs;
    }
    return { b, runs };
  };
  // One pick every 10 ms: a new worker every 250 ms, so runs of 25 (the first pick starts it).
  const { b, runs } = runsOver(undefined, 10, 1000);
  assert.equal(b.tieStreakMs, 250);
  assert.equal(runs.length, 40, JSON.stringify(runs));
  assert.ok(runs.every((n) => n === 25), JSON.stringify(runs));
  // No time bound: 1000 picks 10 ms apart stay on the first worker (under 1023 picks).
  assert.deepEqual(runsOver(0, 10, 1000).runs, [1000]);
  // Picks in one instant are bounded by tieStreak alone.
  assert.deepEqual(runsOver(250, 0, 1000).runs, [1000]);
  for (const bad of [-1, NaN, Infinity, "5"]) {
    assert.throws(
      () => new Balancer({ strategy: "least_connections", tieStreakMs: bad as number }),
      (e) => RpcError.is(e, "invalid_argument") && /tieStreakMs/.test((e as Error).message),
    );
  }
});

/** Closed-loop simulation on a virtual clock: `concurrency` calls always in flight. */
function simulateP2C(latencyOf: (id: string) => number, ids: string[], requests: number) {
  let t = 0;
  const b = balancer("p2c_peak_ewma", ids, 3, () => t);
  const set = b.candidates(ids);
  const pending: { id: string; at: number; started: number }[] = [];
  const sent = new Map<string, number>();
  const issue = () => {
    const id = b.select(set)!;
    b.start(id);
    sent.set(id, (sent.get(id) ?? 0) + 1);
    pending.push({ id, at: t + latencyOf(id), started: t });
  };
  for (let i = 0; i < 16; i++) issue();
  for (let n = 16; n < requests; n++) {
    pending.sort((x, y) => x.at - y.at);
    const done = pending.shift()!;
    t = done.at;
    b.finish(done.id, t - done.started, true);
    issue();
  }
  return { sent, b };
}

Deno.test("p2c_peak_ewma: a worker 10x slower than the others gets at most 20 % of requests", () => {
  const ids = WORKERS(4);
  const { sent, b } = simulateP2C((id) => (id === "worker-0" ? 100 : 10), ids, 20_000);
  const share = sent.get("worker-0")! / 20_000;
  assert.ok(share <= 0.2, `slow worker got ${(share * 100).toFixed(1)} %`);
  assert.ok(share > 0, "the slow worker is still probed");
  assert.ok(b.ewma("worker-0") > 5 * b.ewma("worker-1"));
  // Control: equal workers share evenly.
  const even = simulateP2C(() => 10, ids, 20_000).sent;
  for (const id of ids) assert.ok(even.get(id)! / 20_000 > 0.2, JSON.stringify([...even]));
});

Deno.test("p2c_peak_ewma: peak EWMA jumps up, decays down with exp(-dt/tau), failures never lower it", () => {
  let t = 0;
  const b = new Balancer({ strategy: "p2c_peak_ewma", seed: 1, ewmaDecayMs: 1000, now: () => t });
  b.add("a");
  assert.equal(b.ewma("a"), 0);
  b.start("a");
  assert.equal(b.active("a"), 1);
  b.finish("a", 100, true);
  assert.equal(b.active("a"), 0);
  assert.equal(b.ewma("a"), 100);
  t = 1000;
  assert.ok(Math.abs(b.ewma("a") - 100 * Math.exp(-1)) < 1e-9); // read decays to now
  b.finish("a", 10, true); // below: blended with w = exp(-1)
  const blended = 100 * Math.exp(-1) + 10 * (1 - Math.exp(-1));
  assert.ok(Math.abs(b.ewma("a") - blended) < 1e-9);
  b.finish("a", 500, true); // above: jumps
  assert.equal(b.ewma("a"), 500);
  t = 2000;
  b.finish("a", 1, false); // a fast failure does not make it look fast
  assert.ok(Math.abs(b.ewma("a") - 500) < 1e-9, `${b.ewma("a")}`);
  assert.equal(b.active("a"), 0, "active never goes below 0");
});

Deno.test("consistent_hash: removing 1 of 10 workers remaps <= 12 % of 100,000 keys, only its own", () => {
  const ids = WORKERS(10);
  const b = balancer("consistent_hash", ids);
  const set = b.candidates(ids);
  const keys = Array.from({ length: 100_000 }, (_, i) => `user:${i}`);
  const before = keys.map((k) => b.select(set, k)!);
  const load = counts(before);
  for (const id of ids) {
    const share = load.get(id)! / keys.length;
    assert.ok(share > 0.08 && share < 0.12, `${id} owns ${share}`);
  }
  // Deterministic: a second balancer (another seed) maps keys identically.
  const b2 = balancer("consistent_hash", [...ids].reverse(), 777);
  const set2 = b2.candidates(ids);
  for (let i = 0; i < 1000; i++) assert.equal(b2.select(set2, keys[i]), before[i]);
  b.remove("worker-3");
  let moved = 0;
  for (let i = 0; i < keys.length; i++) {
    const now = b.select(set, keys[i]);
    if (now !== before[i]) {
      moved++;
      assert.equal(before[i], "worker-3", `key ${keys[i]} moved off a surviving worker`);
    }
  }
  assert.ok(moved <= 12_000 && moved > 0, `${moved} keys moved`);
  assert.equal(moved, load.get("worker-3"));
  // An ejected owner's keys go elsewhere while ejected, and come back.
  let t = 0;
  const c = balancer("consistent_hash", ids, 1, () => t);
  const cs = c.candidates(ids);
  const owner = c.select(cs, "k")!;
  c.eject(owner, 100);
  assert.notEqual(c.select(cs, "k"), owner);
  t = 100;
  assert.equal(c.select(cs, "k"), owner);
});

Deno.test("random and weighted_random: seedable, and weights set the odds", () => {
  const ids = WORKERS(5);
  const seq = (seed: number) => {
    const b = balancer("random", ids, seed);
    const s = b.candidates(ids);
    return Array.from({ length: 50 }, () => b.select(s));
  };
  assert.deepEqual(seq(5), seq(5));
  assert.notDeepEqual(seq(5), seq(6));
  const b = new Balancer({ strategy: "weighted_random", seed: 11 });
  b.add("light", 1);
  b.add("mid", 2);
  b.add("heavy", 7);
  const set = b.candidates(["light", "mid", "heavy"]);
  const n = 50_000;
  const c = counts(Array.from({ length: n }, () => b.select(set)));
  assert.ok(Math.abs(c.get("light")! / n - 0.1) < 0.01, JSON.stringify([...c]));
  assert.ok(Math.abs(c.get("mid")! / n - 0.2) < 0.01, JSON.stringify([...c]));
  assert.ok(Math.abs(c.get("heavy")! / n - 0.7) < 0.01, JSON.stringify([...c]));
  b.add("light", 7); // weight update takes effect on the cached set
  b.add("heavy", 1);
  const c2 = counts(Array.from({ length: n }, () => b.select(set)));
  assert.ok(c2.get("light")! > c2.get("heavy")! * 4, JSON.stringify([...c2]));
  assert.equal(b.weight("light"), 7);
});

Deno.test("every strategy skips ejected workers until their deadline; all ejected gives undefined", () => {
  for (
    const strategy of [
      "round_robin",
      "random",
      "least_connections",
      "p2c_peak_ewma",
      "weighted_random",
      "consistent_hash",
    ] as const
  ) {
    let t = 0;
    const ids = WORKERS(5);
    const b = balancer(strategy, ids, 9, () => t);
    const set = b.candidates(ids);
    b.eject("worker-1", 1000);
    b.eject("worker-2", 2000);
    assert.equal(b.isEjected("worker-1"), true);
    for (let i = 0; i < 300; i++) {
      const id = b.select(set, `k${i}`);
      assert.ok(id && id !== "worker-1" && id !== "worker-2", `${strategy} picked ${id}`);
    }
    t = 1000;
    // 12000 picks: least_connections keeps an idle tie on one worker for 1023 picks in a row.
    const back = new Set(Array.from({ length: 12_000 }, (_, i) => b.select(set, `k${i}`)));
    assert.ok(back.has("worker-1") && !back.has("worker-2"), `${strategy}: ${[...back]}`);
    for (const id of ids) b.eject(id, 5000);
    assert.equal(b.select(set, "k"), undefined, strategy);
    t = 5000;
    assert.ok(b.select(set, "k") !== undefined, strategy);
  }
});

Deno.test("candidate sets: unknown ids skipped, duplicates dropped, removals and re-adds tracked", () => {
  const b = balancer("round_robin", ["a", "b", "c"]);
  const set = b.candidates(["a", "ghost", "b", "a", "c"]);
  assert.deepEqual(set.ids, ["a", "b", "c"]);
  assert.equal(set.size, 3);
  b.remove("b");
  assert.ok(b.select(set) !== "b");
  assert.deepEqual(set.ids, ["a", "c"]);
  for (let i = 0; i < 20; i++) assert.notEqual(b.select(set), "b");
  b.add("ghost"); // reuses b's slot
  b.select(set);
  assert.deepEqual(set.ids, ["a", "ghost", "c"]);
  assert.equal(b.select(b.candidates([])), undefined);
  b.remove("a");
  b.remove("ghost");
  b.remove("c");
  b.remove("c");
  assert.equal(b.select(set), undefined);
  assert.equal(b.size, 0);
  const other = balancer("round_robin", ["a"]);
  assert.throws(() => other.select(set), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(() => b.select({ ids: [], size: 0 }), (e) => RpcError.is(e, "invalid_argument"));
  // Unknown members are ignored by start/finish/eject and read as 0.
  b.start("nobody");
  b.finish("nobody", 1, true);
  b.eject("nobody", 10);
  assert.equal(b.active("nobody"), 0);
  assert.equal(b.ewma("nobody"), 0);
});

Deno.test("balancer grows past its initial capacity and keeps member state", () => {
  const b = new Balancer({ strategy: "least_connections", seed: 1, capacity: 1 });
  const ids = WORKERS(5000);
  for (const id of ids) {
    b.add(id);
    b.start(id);
  }
  b.finish("worker-4321", 1, true);
  const set = b.candidates(ids);
  assert.equal(b.select(set), "worker-4321");
  assert.equal(b.active("worker-17"), 1);
  assert.equal(b.size, 5000);
});

Deno.test("balancer: bad options and inputs are RpcError invalid_argument", () => {
  const bad = [
    { strategy: "fastest" },
    { strategy: "random", ewmaDecayMs: 0 },
    { strategy: "random", capacity: 0 },
    { strategy: "random", seed: NaN },
    { strategy: "random", now: 5 },
    { strategy: "least_connections", tieStreak: 0 },
    { strategy: "least_connections", tieStreak: MAX_TIE_STREAK + 1 },
    { strategy: "least_connections", tieStreak: 2.5 },
  ];
  for (const o of bad) {
    assert.throws(
      () => new Balancer(o as never),
      (e) => RpcError.is(e, "invalid_argument"),
      JSON.stringify(o),
    );
  }
  assert.throws(
    () => new Balancer({ strategy: "least_connections", tieStreak: 0 }),
    /tieStreak must be an integer in \[1, 1023\]/,
  );
  const b = new Balancer({ strategy: "random" });
  assert.throws(() => b.add("a", 0), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(() => b.add("a", NaN), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(() => b.add(1 as unknown as string), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(
    () => b.candidates("a" as unknown as string[]),
    (e) => RpcError.is(e, "invalid_argument"),
  );
  b.add("a");
  assert.throws(() => b.eject("a", NaN), (e) => RpcError.is(e, "invalid_argument"));
  b.finish("a", NaN, true); // a nonsense latency counts as 0, never NaN state
  assert.equal(b.ewma("a"), 0);
  assert.equal(b.strategy, "random");
});

Deno.test("candidate sets: release() frees core memory for reuse and blocks further selects", () => {
  const ids = WORKERS(50);
  const b = balancer("random", ids);
  const keep = b.candidates(ids);
  const base = sharedCore().memoryBytes();
  for (let i = 0; i < 20_000; i++) {
    const temp = b.candidates(ids.slice(i % 10));
    assert.ok(b.select(temp) !== undefined);
    b.release(temp);
    b.release(temp);
  }
  const after = sharedCore().memoryBytes();
  assert.ok(after <= base + 65536, `core memory grew from ${base} to ${after}`);
  const gone = b.candidates(ids);
  b.release(gone);
  assert.equal(gone.size, 0);
  assert.throws(() => b.select(gone), (e) => RpcError.is(e, "invalid_argument"));
  assert.ok(ids.includes(b.select(keep)!));
});
