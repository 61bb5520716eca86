/**
 * Spawns `examples/demo_worker.ts` (or any script that prints a JSON "ready" line) as a separate
 * OS process and waits for that line. Used by the demo, the client bench and the tests that
 * SIGKILL a worker.
 *
 * @module
 */
import type { DevCa, Node } from "../mod.ts";

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
  /** RPC port; 0 (default) picks a free one. A restart at the same address passes the old one. */
  rpcPort?: number;
  /** Gossip port; 0 (default) picks a free one. */
  gossipPort?: number;
}

/** Writes a development CA to a private temporary file for child processes. */
export async function writeCaFile(ca: DevCa): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "rpcnet-ca-", suffix: ".json" });
  await Deno.writeTextFile(path, JSON.stringify({ certPem: ca.certPem, keyPem: ca.keyPem }), {
    mode: 0o600,
  });
  return path;
}

/** Reads a CA file written by {@linkcode writeCaFile} (undefined when no path is given). */
export async function readCaFile(path: string | undefined): Promise<DevCa | undefined> {
  return path ? JSON.parse(await Deno.readTextFile(path)) : undefined;
}

/** Parses a `--tags` argument, `k=v,k=v` (a key without `=` gets the empty value). */
export function parseTagList(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const kv of text.split(",").filter(Boolean)) {
    const [k, v = ""] = kv.split("=");
    tags[k.trim()] = v.trim();
  }
  return tags;
}

/**
 * Prints a started worker node's ready line, the {@linkcode WorkerInfo} that
 * {@linkcode WorkerProcess} and {@linkcode ReadyProcess} wait for (start the node with
 * `leaveOnSignals: true` so that SIGTERM leaves gracefully).
 */
export function announceReady(node: Node): void {
  const info: WorkerInfo & { ready: true } = {
    ready: true,
    id: node.id,
    rpcAddr: node.rpcAddr,
    gossipAddr: node.gossipAddr,
  };
  console.log(JSON.stringify(info));
}

/**
 * A Deno child process that prints one JSON line on stdout when it is ready; the rest of its
 * stdout is drained. SIGTERM asks it to leave gracefully, SIGKILL ends it at once.
 */
export class ReadyProcess<T> {
  /** The parsed ready line. */
  readonly ready: T;
  /** The OS process. */
  readonly child: Deno.ChildProcess;
  #drain: Promise<void>;
  #status: Promise<Deno.CommandStatus>;

  private constructor(ready: T, child: Deno.ChildProcess, drain: Promise<void>) {
    this.ready = ready;
    this.child = child;
    this.#drain = drain;
    this.#status = child.status;
  }

  /** Runs `deno run -A script …args` and resolves with its ready line; `label` names it in errors. */
  static async start<T>(
    script: string,
    args: string[],
    label: string,
    readyTimeoutMs = 30_000,
  ): Promise<ReadyProcess<T>> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", script, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${label} not ready in ${readyTimeoutMs} ms`)),
        readyTimeoutMs,
      );
    });
    try {
      const ready = (async () => {
        for (;;) {
          const { value, done } = await lines.read();
          if (done) throw new Error(`${label} exited before it was ready`);
          buf += value;
          const nl = buf.indexOf("\n");
          if (nl >= 0) return JSON.parse(buf.slice(0, nl)) as T;
        }
      })();
      const info = await Promise.race([ready, timeout]);
      const drain = (async () => {
        try {
          while (!(await lines.read()).done) { /* discard */ }
        } catch { /* process gone */ }
      })();
      return new ReadyProcess(info, child, drain);
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

  /** Asks the process to leave gracefully (SIGTERM) and waits for it to exit, then kills it. */
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

/** A running worker process (`examples/demo_worker.ts`). */
export class WorkerProcess {
  /** The worker's addresses. */
  readonly info: WorkerInfo;
  readonly #process: ReadyProcess<WorkerInfo>;

  private constructor(process: ReadyProcess<WorkerInfo>) {
    const { id, rpcAddr, gossipAddr } = process.ready;
    this.info = { id, rpcAddr, gossipAddr };
    this.#process = process;
  }

  /** The OS process. */
  get child(): Deno.ChildProcess {
    return this.#process.child;
  }

  /** Starts a worker and resolves once it has joined and serves RPC. */
  static async spawn(o: SpawnOptions): Promise<WorkerProcess> {
    const script = new URL("./demo_worker.ts", import.meta.url).pathname;
    const args = ["--id", o.id, "--ca", o.caFile];
    for (const s of o.seeds) args.push("--seed", s);
    args.push("--tags", o.tags ?? "role=worker", "--delay-ms", String(o.delayMs ?? 1));
    args.push("--rpc-port", String(o.rpcPort ?? 0), "--gossip-port", String(o.gossipPort ?? 0));
    return new WorkerProcess(
      await ReadyProcess.start<WorkerInfo>(script, args, `worker ${o.id}`, o.readyTimeoutMs),
    );
  }

  /** Kills the process at once (no leave message): others must detect the failure. */
  kill(): Promise<void> {
    return this.#process.kill();
  }

  /** Asks the worker to leave gracefully (SIGTERM) and waits for it to exit. */
  stop(timeoutMs = 10_000): Promise<Deno.CommandStatus> {
    return this.#process.stop(timeoutMs);
  }
}
