/** Polling helpers for tests on a loaded machine: wait for a condition, never for a fixed time. */

/** How long to wait for a condition and how often to look at it. */
export interface WaitOptions {
  /** Give up after this long; default 15,000 ms (generous: two cores shared by several runs). */
  timeoutMs?: number;
  /** Look at the condition this often; default 10 ms. */
  pollMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_POLL_MS = 10;

/**
 * Polls `cond` until it holds; throws after the timeout with a message naming `what` (what was
 * awaited, e.g. "3 workers visible").
 */
export async function waitFor(
  cond: () => boolean,
  what: string,
  options: WaitOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(await eventually(cond, options))) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

/**
 * Polls `cond` until it holds or the timeout passes; returns whether it held. For callers that
 * build their own failure message from the state at the end.
 */
export async function eventually(cond: () => boolean, options: WaitOptions = {}): Promise<boolean> {
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleep(pollMs);
  }
  return cond();
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
