/**
 * Process lifecycle: SIGTERM/SIGINT turn into a graceful leave (others see `NodeLeft`, never
 * `NodeFailed`; in-flight calls drain), then the process exits. Orchestrators (systemd,
 * Kubernetes, docker stop) send SIGTERM and wait a grace period before SIGKILL; a second signal
 * exits at once.
 *
 * @module
 */

/** What {@linkcode leaveOnSignals} needs of a node. */
export interface Leavable {
  /** Leaves gracefully and closes everything. */
  leave(timeoutMs?: number): Promise<void>;
}

/**
 * Options of {@linkcode leaveOnSignals}.
 *
 * @example
 * ```ts
 * import { type LeaveOnSignalsOptions, Node } from "@rpcnet/cluster";
 *
 * const leaveOnSignals: LeaveOnSignalsOptions = {
 *   signals: ["SIGTERM"], // what the orchestrator sends before it kills the process
 *   leaveTimeoutMs: 5000,
 *   onSignal: (signal) => console.log(`${signal}: leaving the cluster`),
 * };
 * const node = await Node.start({ tags: { role: "worker" }, leaveOnSignals });
 * ```
 */
export interface LeaveOnSignalsOptions {
  /** Signals that start the leave. Default `["SIGTERM", "SIGINT"]` (only SIGINT on Windows). */
  signals?: readonly Deno.Signal[];
  /** Exit the process once the node has left. Default `true`. */
  exit?: boolean;
  /** Exit code after a graceful leave. Default 0. */
  exitCode?: number;
  /** Longest wait for the leave to be gossiped (passed to `leave`). Default: `leave`'s own. */
  leaveTimeoutMs?: number;
  /** Called with the signal before leaving (e.g. to log it). */
  onSignal?: (signal: Deno.Signal) => void;
}

/**
 * Makes SIGTERM/SIGINT leave `node` gracefully and then exit the process. A second signal during
 * the leave exits at once with code 1. Returns a function that removes the listeners (`Node`
 * calls it when it leaves or stops some other way, so the listeners never keep a finished
 * process alive).
 *
 * @example
 * ```ts
 * import { leaveOnSignals, Node } from "@rpcnet/cluster";
 *
 * const node = await Node.start({ seeds: ["10.0.0.1:7946"] });
 * leaveOnSignals(node); // or Node.start({ leaveOnSignals: true, ... })
 * ```
 */
export function leaveOnSignals(node: Leavable, options: LeaveOnSignalsOptions = {}): () => void {
  const signals: Deno.Signal[] = [
    ...(options.signals ??
      (Deno.build.os === "windows" ? ["SIGINT"] : ["SIGTERM", "SIGINT"]) as Deno.Signal[]),
  ];
  const exit = options.exit ?? true;
  let leaving = false;
  const listener = (signal: Deno.Signal) => {
    if (leaving) {
      if (exit) Deno.exit(1);
      return;
    }
    leaving = true;
    try {
      options.onSignal?.(signal);
    } catch { /* a logging callback must not stop the leave */ }
    node.leave(options.leaveTimeoutMs).catch(() => {}).finally(() => {
      remove();
      if (exit) Deno.exit(options.exitCode ?? 0);
    });
  };
  const installed: [Deno.Signal, () => void][] = [];
  for (const s of signals) {
    const fn = () => listener(s);
    Deno.addSignalListener(s, fn);
    installed.push([s, fn]);
  }
  let removed = false;
  function remove(): void {
    if (removed) return;
    removed = true;
    for (const [s, fn] of installed) {
      try {
        Deno.removeSignalListener(s, fn);
      } catch { /* already removed */ }
    }
  }
  return remove;
}
