/**
 * Helpers of the `rpcnet` command tests: run the command as a subprocess, start agents and read
 * their JSON log lines, make a shared CA with `rpcnet ca create`.
 */
import type { WaitOptions } from "./wait.ts";

export const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
export const REPO = new URL("../..", import.meta.url).pathname;
export const HANDLERS = new URL("../../examples/handlers.ts", import.meta.url).pathname;

/** What a finished command left. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts `rpcnet …args` with stdout and stderr piped, colours off. */
function spawnRpcnet(args: string[], env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs `rpcnet …args` to completion (killed after `timeoutMs`). */
export async function rpcnet(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<Ran> {
  const child = spawnRpcnet(args, env);
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** A child process whose stdout and stderr are read line by line as they come. */
export class LineProcess {
  readonly child: Deno.ChildProcess;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly #done: Promise<unknown>;
  #waiters = new Set<() => void>();

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawnRpcnet(args, env);
    this.#done = Promise.all([
      this.#read(this.child.stdout, this.stdout),
      this.#read(this.child.stderr, this.stderr),
    ]);
  }

  async #read(stream: ReadableStream<Uint8Array>, into: string[]): Promise<void> {
    let buf = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          into.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          for (const w of this.#waiters) w();
        }
      }
    } catch { /* process gone */ }
    if (buf) into.push(buf);
    for (const w of this.#waiters) w();
  }

  /**
   * Waits until `pred` holds over the lines read so far: looks again at each new line (and every
   * `pollMs`, default 200 ms). On timeout the error names `what` and carries the output so far.
   */
  async waitFor(pred: () => boolean, what: string, options: WaitOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 15_000;
    const pollMs = options.pollMs ?? 200;
    const until = Date.now() + timeoutMs;
    while (!pred()) {
      const left = until - Date.now();
      if (left <= 0) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}\nstdout:\n${
            this.stdout.join("\n")
          }\nstderr:\n${this.stderr.join("\n")}`,
        );
      }
      await new Promise<void>((r) => {
        const done = () => {
          clearTimeout(t);
          this.#waiters.delete(done);
          r();
        };
        const t = setTimeout(done, Math.min(left, pollMs));
        this.#waiters.add(done);
      });
    }
  }

  /** Sends `signal` and waits for the exit status (SIGKILL after `timeoutMs`). */
  async stop(signal: Deno.Signal = "SIGTERM", timeoutMs = 10_000): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, timeoutMs);
    try {
      const status = await this.child.status;
      await this.#done;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** One parsed agent log line. */
export type LogLine = Record<string, unknown> & { event: string };

/** An `rpcnet agent` subprocess. */
export class Agent extends LineProcess {
  /** The `started` line. */
  started!: LogLine & { id: string; rpcAddr: string; gossipAddr: string };

  /** The JSON log lines so far. */
  get log(): LogLine[] {
    return this.stdout.flatMap((l) => {
      try {
        return [JSON.parse(l) as LogLine];
      } catch {
        return [];
      }
    });
  }

  /** Log lines of `event` about member `id`. */
  events(event: string, id?: string): LogLine[] {
    return this.log.filter((l) => l.event === event && (id === undefined || l.id === id));
  }

  /** Starts an agent and waits for its `started` line. */
  static async start(args: string[], env: Record<string, string> = {}): Promise<Agent> {
    const a = new Agent(["agent", ...args], env);
    try {
      await a.waitFor(() => a.events("started").length > 0, "the agent's started line", {
        timeoutMs: 30_000,
      });
    } catch (e) {
      await a.stop("SIGKILL");
      throw e;
    }
    a.started = a.events("started")[0] as Agent["started"];
    return a;
  }
}

/** A temporary directory with a CA made by `rpcnet ca create`. */
export async function makeCa(): Promise<{ dir: string; ca: string }> {
  const dir = await Deno.makeTempDir({ prefix: "rpcnet-cli-" });
  const ca = `${dir}/rpcnet-ca.pem`;
  const r = await rpcnet(["ca", "create", "--out", ca]);
  if (r.code !== 0) throw new Error(`ca create failed: ${r.stderr}`);
  return { dir, ca };
}

/** Agent flags for a LOCAL-profile loopback node on free ports. */
export function agentArgs(id: string, ca: string, extra: string[] = []): string[] {
  return [
    "--id",
    id,
    "--ca",
    ca,
    "--profile",
    "LOCAL",
    "--bind",
    "127.0.0.1:0",
    "--rpc-port",
    "0",
    ...extra,
  ];
}
