import assert from "node:assert/strict";
import { Balancer, type CandidateSet, STRATEGIES, type StrategyName } from "../mod.ts";
import { OracleBalancer, type OracleSet } from "./oracle/balance.ts";
import { runInterleaved } from "./_support/interleave.ts";

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Drives the same random operations through the wasm balancer and the oracle, yielding after each
 * step (so several balancers can be interleaved); returns the number of selects compared.
 */
function* driver(strategy: StrategyName, seed: number, steps: number): Generator<void, number> {
  const rand = mulberry32(seed * 7919 + 1);
  let t = 1_000;
  const now = () => t;
  const tau = 500 + rand() * 20_000;
  // Least connections' streak: the default (undefined: 1023 on both sides), an earlier default,
  // every tie at random, or a short one.
  const tieStreak = [undefined, 16, 1, 3][seed % 4];
  // And its time bound: the default (250 ms), none, or a short one.
  const tieStreakMs = [undefined, 0, 40][seed % 3];
  const wasm = new Balancer({
    strategy,
    seed,
    ewmaDecayMs: tau,
    capacity: 2,
    now,
    tieStreak,
    tieStreakMs,
  });
  const oracle = new OracleBalancer(strategy, seed, tau, now, tieStreak, tieStreakMs);
  const universe = Array.from({ length: 60 }, (_, i) => `worker-${i}`);
  const sets: [CandidateSet, OracleSet][] = [];
  const inFlight: string[] = [];
  const newSet = () => {
    const size = 1 + Math.floor(rand() * 40);
    const ids = Array.from({ length: size }, () => universe[Math.floor(rand() * universe.length)]);
    sets.push([wasm.candidates(ids), oracle.candidates(ids)]);
  };
  for (let i = 0; i < 30; i++) {
    const w = rand() < 0.3 ? 0.1 + rand() * 10 : 1;
    wasm.add(universe[i], w);
    oracle.add(universe[i], w);
  }
  newSet();
  let selects = 0;
  for (let step = 0; step < steps; step++) {
    t += rand() < 0.1 ? rand() * 5000 : rand() * 5;
    const r = rand();
    const id = universe[Math.floor(rand() * universe.length)];
    if (r < 0.45) {
      const [ws, os] = sets[Math.floor(rand() * sets.length)];
      const key = strategy === "consistent_hash" && rand() < 0.9
        ? `key-${Math.floor(rand() * 1e6)}`
        : undefined;
      const got = wasm.select(ws, key);
      const want = oracle.select(os, key);
      assert.equal(got, want, `${strategy} seed ${seed} step ${step}`);
      selects++;
      if (got !== undefined && rand() < 0.8) {
        wasm.start(got);
        oracle.start(got);
        inFlight.push(got);
      }
    } else if (r < 0.8 && inFlight.length) {
      const k = Math.floor(rand() * inFlight.length);
      const done = inFlight.splice(k, 1)[0];
      const latency = rand() < 0.1 ? 50 + rand() * 500 : 1 + rand() * 20;
      const ok = rand() < 0.9;
      wasm.finish(done, latency, ok);
      oracle.finish(done, latency, ok);
    } else if (r < 0.86) {
      const until = t + (rand() < 0.3 ? -1 : rand() * 3000);
      wasm.eject(id, until);
      oracle.eject(id, until);
    } else if (r < 0.9) {
      const w = 0.1 + rand() * 10;
      wasm.add(id, w);
      oracle.add(id, w);
    } else if (r < 0.93) {
      wasm.remove(id);
      oracle.remove(id);
    } else if (r < 0.95) {
      newSet();
    }
    if (step % 97 === 0) {
      for (const m of universe) {
        assert.equal(wasm.has(m), oracle.members.has(m));
        const om = oracle.members.get(m);
        if (!om) continue;
        assert.equal(wasm.active(m), om.active);
        const want = oracle.decayed(om, t);
        const got = wasm.ewma(m);
        assert.ok(Math.abs(got - want) <= 1e-9 * Math.max(got, want), `ewma ${got} vs ${want}`);
      }
    }
    yield;
  }
  return selects;
}

function drive(strategy: StrategyName, seed: number, steps: number): number {
  const it = driver(strategy, seed, steps);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}

for (const strategy of STRATEGIES) {
  Deno.test(`balance oracle: ${strategy} makes the same choices as the reference for the same seed`, () => {
    let selects = 0;
    for (let seed = 1; seed <= 8; seed++) selects += drive(strategy, seed, 3000);
    assert.ok(selects > 8000, `only ${selects} selects`);
  });
}

Deno.test("balance oracle: interleaved balancers (shared core, per-balancer PRNG and state) agree", () => {
  const runs = STRATEGIES.flatMap((strategy, i) => [
    driver(strategy, 100 + i, 2000),
    driver(strategy, 200 + i, 2000),
  ]);
  const selects = runInterleaved(runs);
  assert.ok(selects > 4000, `only ${selects} selects`);
});
