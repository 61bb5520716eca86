/**
 * Run by balance_gc_test.ts in a child process with `--expose-gc`: creates and drops many
 * detectors, balancers and candidate sets in rounds while one long-lived balancer keeps working,
 * and prints the shared core memory size after each round plus whether the survivor still agrees
 * with the oracle.
 *
 * @module
 */
import { Balancer, PhiAccrualDetector } from "../../mod.ts";
import { sharedCore } from "../../wasm/loader.ts";
import { OracleBalancer } from "../oracle/balance.ts";

const gc = (globalThis as unknown as { gc: () => void }).gc;
let t = 0;
const now = () => t;
const ids = Array.from({ length: 20 }, (_, i) => `w${i}`);
const survivor = new Balancer({ strategy: "p2c_peak_ewma", seed: 9, now });
const oracle = new OracleBalancer("p2c_peak_ewma", 9, 10_000, now);
for (const id of ids) {
  survivor.add(id);
  oracle.add(id);
}
const ws = survivor.candidates(ids);
const os = oracle.candidates(ids);
const sizes: number[] = [];
let agree = true;
for (let round = 0; round < 6; round++) {
  (() => {
    for (let i = 0; i < 200; i++) {
      const d = new PhiAccrualDetector({ capacity: 16, maxSampleSize: 100 });
      for (let k = 0; k < 8; k++) d.heartbeat(`m${k}`, k);
      const b = new Balancer({ strategy: i % 2 ? "consistent_hash" : "random", seed: i });
      for (const id of ids) b.add(id);
      const s = b.candidates(ids);
      for (let k = 0; k < 40; k++) b.select(s, `key${k}`);
      // The survivor keeps selecting in between (its context is switched out and back in).
      t += 1;
      const got = survivor.select(ws);
      if (got !== oracle.select(os)) agree = false;
      survivor.start(got!);
      oracle.start(got!);
      survivor.finish(got!, 1 + (i % 13), true);
      oracle.finish(got!, 1 + (i % 13), true);
    }
  })();
  for (let k = 0; k < 3; k++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  sizes.push(sharedCore().memoryBytes());
}
console.log(JSON.stringify({ sizes, agree }));
