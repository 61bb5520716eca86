/** Polling helpers for tests on a loaded machine: wait for a condition, never for a fixed time. */

/** Polls `cond` every `pollMs` until it holds; throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 10_000, pollMs = 10): Promise<void> {
  if (!(await eventually(cond, timeoutMs, pollMs))) {
    throw new Error(`condition not reached within ${timeoutMs} ms`);
  }
}

/** Polls `cond` every `pollMs` until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(
  cond: () => boolean,
  timeoutMs: number,
  pollMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return cond();
}
