import assert from "node:assert/strict";
import { RetryBudget, RpcError } from "../mod.ts";

Deno.test("RetryBudget allows 20% of calls plus the per-second floor, in a sliding window", () => {
  let now = 0;
  const budget = new RetryBudget({ now: () => now }); // 10 s window, 10/s floor → 100 reserve
  assert.equal(budget.balance(), 100);
  for (let i = 0; i < 1000; i++) budget.deposit();
  assert.equal(budget.balance(), 300); // 0.2 * 1000 + 100
  let retried = 0;
  while (budget.tryWithdraw()) retried++;
  assert.equal(retried, 300);
  assert.equal(budget.tryWithdraw(), false);
  now += 10_500; // the window slid past every deposit and withdrawal
  assert.equal(budget.balance(), 100);
});

Deno.test("RetryBudget without a floor retries at most the configured fraction", () => {
  let now = 0;
  const budget = new RetryBudget({ minRetriesPerSec: 0, percentCanRetry: 0.5, now: () => now });
  assert.equal(budget.tryWithdraw(), false);
  budget.deposit();
  budget.deposit();
  assert.equal(budget.tryWithdraw(), true);
  assert.equal(budget.tryWithdraw(), false);
  now += 3_000; // still inside the window
  budget.deposit();
  budget.deposit();
  assert.equal(budget.tryWithdraw(), true);
  assert.equal(budget.tryWithdraw(), false);
});

Deno.test("RetryBudget rejects bad options with invalid_argument", () => {
  for (
    const o of [{ ttlMs: 0 }, { minRetriesPerSec: -1 }, { percentCanRetry: 1.5 }, { ttlMs: NaN }]
  ) {
    assert.throws(() => new RetryBudget(o), (e) => RpcError.is(e, "invalid_argument"));
  }
});
