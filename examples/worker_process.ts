/**
 * Spawns `examples/demo_worker.ts` as a separate OS process and waits for its "ready" line.
 * Used by the demo and by the tests that SIGKILL a worker.
 *
 * @module
 */
import type { DevCa } from "../mod.ts";

/** Where a spawned worker listens. */
export interface WorkerInfo {
  /** Node id. */
  id: string;
  /** RPC address, `host:port`. */
  rpcAddr: string;
  /** Gossip address, `host:port`. */
  gossipAddr: string;
}

/** Options of {@linkcode WorkerProcess.spawn}. */
export interface SpawnOptions {
  /** Node id. */
  id: string;
  /** Gossip seeds to join. */
  seeds: string[];
  /** JSON file holding the shared development CA. */
  caFile: string;
  /** Tags, `k=v,k=v`. Default `role=worker`. */
  tags?: string;
  /** Simulated work per `compute` call, ms. Default 1. */
  delayMs?: number;
  /** How long to wait for the ready line. Default 30 000 ms. */
  readyTimeoutMs?: number;
}

/** Writes a development CA to a private temporary file for child processes. */
export async function writeCaFile(ca: DevCa): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "rpcnet-ca-", suffix: ".json" });
  await Deno.writeTextFile(path, JSON.stringify({ certPem: ca.certPem, keyPem: ca.keyPem }), {
    mode: 0o600,
  });
  return path;
}

/** A running worker process. */
export class WorkerProcess {
  /** The worker's addresses. */
  readonly info: WorkerInfo;
  /** The OS process. */
  readonly child: Deno.ChildProcess;
  #drain: Promise<void>;
  #status: Promise<Deno.CommandStatus>;

  private constructor(info: WorkerInfo, child: Deno.ChildProcess, drain: Promise<void>) {
    this.info = info;
    this.child = child;
    this.#drain = drain;
    this.#status = child.status;
  }

  /** Starts a worker and resolves once it has joined and serves RPC. */
  static async spawn(o: SpawnOptions): Promise<WorkerProcess> {
    const script = new URL("./demo_worker.ts", import.meta.url).pathname;
    const args = ["run", "-A", "--quiet", script, "--id", o.id, "--ca", o.caFile];
    for (const s of o.seeds) args.push("--seed", s);
    args.push("--tags", o.tags ?? "role=worker", "--delay-ms", String(o.delayMs ?? 1));
    const child = new Deno.Command(Deno.execPath(), {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`worker ${o.id} not ready in ${o.readyTimeoutMs ?? 30_000} ms`)),
        o.readyTimeoutMs ?? 30_000,
      );
    });
    try {
      const ready = (async () => {
        for (;;) {
          const { value, done } = await lines.read();
          if (done) throw new Error(`worker ${o.id} exited before it was ready`);
          buf += value;
          const nl = buf.indexOf("\n");
          if (nl >= 0) return JSON.parse(buf.slice(0, nl)) as WorkerInfo & { ready: boolean };
        }
      })();
      const info = await Promise.race([ready, timeout]);
      const drain = (async () => {
        try {
          while (!(await lines.read()).done) { /* discard */ }
        } catch { /* process gone */ }
      })();
      return new WorkerProcess(
        { id: info.id, rpcAddr: info.rpcAddr, gossipAddr: info.gossipAddr },
        child,
        drain,
      );
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await lines.cancel().catch(() => {});
      await child.status;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process at once (no leave message): others must detect the failure. */
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.#status;
    await this.#drain;
  }

  /** Asks the worker to leave gracefully (SIGTERM) and waits for it to exit. */
  async stop(timeoutMs = 10_000): Promise<Deno.CommandStatus> {
    try {
      this.child.kill("SIGTERM");
    } catch { /* already gone */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      this.#status,
      new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!status) await this.kill();
    await this.#drain;
    return await this.#status;
  }
}
