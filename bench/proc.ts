/**
 * A child process of the bench with a line protocol: it prints a ready line (JSON, or a bare
 * value such as a port), then answers each JSON command written to its stdin with one JSON line.
 * Closing its stdin tells it to leave; it is killed if it does not exit in time.
 *
 * @module
 */

const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** Reads lines from a child's stdout. */
class LineReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buf = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  async next(): Promise<string | undefined> {
    for (;;) {
      const nl = this.#buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) return undefined;
      this.#buf += value;
    }
  }

  cancel(): Promise<void> {
    return this.#reader.cancel().catch(() => {});
  }
}

/** A running child process that speaks the bench's line protocol. */
export class Proc<Ready = Record<string, unknown>> {
  /** The parsed ready line (a bare value when it is not JSON). */
  readonly ready: Ready;
  readonly #child: Deno.ChildProcess;
  readonly #lines: LineReader;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #label: string;
  #busy: Promise<unknown> = Promise.resolve();

  private constructor(
    ready: Ready,
    child: Deno.ChildProcess,
    lines: LineReader,
    stdin: WritableStreamDefaultWriter<Uint8Array>,
    label: string,
  ) {
    this.ready = ready;
    this.#child = child;
    this.#lines = lines;
    this.#stdin = stdin;
    this.#label = label;
  }

  /** The OS process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /**
   * Starts `deno run -A <script> …args` with this repository's config; with `prefix`, through
   * that command (e.g. `ip netns exec <ns>`, to run it on a lab host).
   */
  static deno<R>(
    script: string,
    args: string[],
    label: string,
    env?: Record<string, string>,
    prefix: string[] = [],
    config: string = CONFIG,
  ): Promise<Proc<R>> {
    const run = [Deno.execPath(), "run", "-A", "--quiet", "--config", config, script, ...args];
    const [command, ...rest] = [...prefix, ...run];
    return Proc.start<R>(command, rest, label, env);
  }

  /** Starts `command …args` and waits up to `readyTimeoutMs` for its ready line. */
  static async start<R>(
    command: string,
    args: string[],
    label: string,
    env?: Record<string, string>,
    readyTimeoutMs = 60_000,
  ): Promise<Proc<R>> {
    const child = new Deno.Command(command, {
      args,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = new LineReader(child.stdout);
    const stdin = child.stdin.getWriter();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const line = await Promise.race([
        lines.next(),
        new Promise<never>((_, reject) =>
          timer = setTimeout(
            () => reject(new Error(`${label} not ready in ${readyTimeoutMs} ms`)),
            readyTimeoutMs,
          )
        ),
      ]);
      if (line === undefined) throw new Error(`${label} exited before it was ready`);
      let ready: R;
      try {
        ready = JSON.parse(line);
      } catch {
        ready = line as R;
      }
      return new Proc(ready, child, lines, stdin, label);
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await lines.cancel();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends one command and resolves with its answer (commands are answered in order); rejects
   * when no answer comes within `timeoutMs` (a hung child must not hang the bench).
   */
  request<T = Record<string, unknown>>(command: unknown, timeoutMs = 120_000): Promise<T> {
    const next = this.#busy.then(async () => {
      await this.#stdin.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const line = await Promise.race([
          this.#lines.next(),
          new Promise<never>((_, reject) =>
            timer = setTimeout(
              () =>
                reject(
                  new Error(
                    `${this.#label}: no answer to ${JSON.stringify(command)} in ${timeoutMs} ms`,
                  ),
                ),
              timeoutMs,
            )
          ),
        ]);
        if (line === undefined) throw new Error(`${this.#label} exited`);
        return JSON.parse(line) as T;
      } finally {
        clearTimeout(timer);
      }
    });
    this.#busy = next.catch(() => {});
    return next;
  }

  /** Closes stdin (the child leaves), then kills it after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    await this.#stdin.close().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), timeoutMs)),
    ]);
    clearTimeout(timer);
    if (!exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
      await this.#child.status;
    }
    await this.#lines.cancel();
  }

  /** Kills the child at once. */
  async kill(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.#child.status;
    await this.#lines.cancel();
  }
}

/** CPU time (user + system) of a process so far, µs, from /proc (Linux; NaN elsewhere). */
export function processCpuUs(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10_000; // 100 Hz ticks
  } catch {
    return NaN;
  }
}
