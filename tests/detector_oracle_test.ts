import assert from "node:assert/strict";
import { PhiAccrualDetector } from "../mod.ts";
import { OraclePhiDetector } from "./oracle/phi.ts";
import { runInterleaved } from "./_support/interleave.ts";

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function assertClose(got: number, want: number, what: string): void {
  const scale = Math.max(Math.abs(got), Math.abs(want));
  assert.ok(Math.abs(got - want) <= 1e-9 * scale, `${what}: wasm ${got} vs oracle ${want}`);
}

interface Case {
  seed: number;
  window: number;
  threshold: number;
  pause: number;
  minStd: number;
}

function* driver({ seed, window, threshold, pause, minStd }: Case): Generator<void, number> {
  const rand = mulberry32(seed);
  const opts = {
    threshold,
    maxSampleSize: window,
    acceptableHeartbeatPauseMs: pause,
    minStdDeviationMs: minStd,
    firstHeartbeatEstimateMs: 500 + rand() * 1000,
  };
  const wasm = new PhiAccrualDetector({ ...opts, capacity: 1 });
  const oracle = new OraclePhiDetector(opts);
  const ids = Array.from({ length: 40 }, (_, i) => `node-${i}`);
  const clock = new Map<string, number>();
  let now = 0;
  let checks = 0;
  for (let step = 0; step < 6000; step++) {
    const r = rand();
    const id = ids[Math.floor(rand() * ids.length)];
    now += rand() * 50;
    if (r < 0.7) {
      // Arrival: mostly regular per member with jitter, sometimes a long gap or a reordering.
      const prev = clock.get(id) ?? now;
      const gap = rand() < 0.02 ? 20_000 * rand() : 200 + 800 * rand();
      const t = rand() < 0.01 ? prev - 10 : prev + gap;
      clock.set(id, Math.max(prev, t));
      wasm.heartbeat(id, t);
      oracle.heartbeat(id, t);
    } else if (r < 0.85) {
      const t = (clock.get(id) ?? now) + rand() * 10_000;
      assertClose(wasm.phi(id, t), oracle.phi(id, t), `phi(${id}, ${t}) step ${step}`);
      assert.equal(wasm.isAvailable(id, t), oracle.phi(id, t) < threshold);
      checks++;
    } else if (r < 0.9) {
      const t = now + rand() * 5000;
      const got = wasm.phiAll(t);
      const want = oracle.phiAll(t);
      assert.equal(got.size, want.size);
      for (const [k, v] of want) assertClose(got.get(k)!, v, `phiAll ${k} step ${step}`);
      const th = rand() < 0.5 ? threshold : 1 + rand() * 30;
      assert.deepEqual(wasm.suspects(t, th).sort(), oracle.suspects(t, th).sort());
      checks += want.size;
    } else if (r < 0.93) {
      wasm.remove(id);
      oracle.remove(id);
      clock.delete(id);
    } else if (r < 0.95 && oracle.members.has(id)) {
      const ms = 10 + rand() * 300;
      const p = rand() < 0.5 ? 0 : rand() * 2000;
      wasm.configure(id, { minStdDeviationMs: ms, acceptableHeartbeatPauseMs: p });
      oracle.configure(id, ms, p);
    }
    assert.equal(wasm.size, oracle.members.size);
    yield;
  }
  return checks;
}

function drive(c: Case): number {
  const it = driver(c);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}

Deno.test("phi oracle: random arrival sequences agree with the TypeScript reference to 1e-9", () => {
  let checks = 0;
  const rand = mulberry32(7);
  for (let c = 0; c < 12; c++) {
    checks += drive({
      seed: 1000 + c,
      window: [1, 2, 7, 50, 1000][c % 5],
      threshold: [8, 3, 16][c % 3],
      pause: c % 2 ? 0 : rand() * 3000,
      minStd: 20 + rand() * 200,
    });
  }
  assert.ok(checks > 20_000, `only ${checks} comparisons`);
});

Deno.test("phi oracle: interleaved detectors sharing the core agree with their references", () => {
  const runs = [1, 7, 50, 1000].map((window, i) =>
    driver({ seed: 500 + i, window, threshold: 8, pause: i * 300, minStd: 50 + i * 40 })
  );
  const checks = runInterleaved(runs);
  assert.ok(checks > 5000, `only ${checks} comparisons`);
});
