/**
 * Joining through seeds, as serf's `retry_join` does: each seed is a `host:port` whose host may
 * be a DNS name resolving to several A/AAAA records (a Kubernetes headless service), resolved
 * again on every attempt; every resolved address is tried with a push-pull. Reaching only this
 * node itself (a name that resolves to our own address, or a reply carrying no member but us)
 * never counts as joined, so nodes behind one name cannot each form a cluster of one. A refusal
 * that retrying cannot fix (another keyring key or label, a port that speaks another protocol)
 * fails fast with its reason.
 *
 * @module
 */
import { formatHostPort, type HostPort, isWildcard, parseHostPort } from "../addr.ts";
import { RpcError } from "../errors.ts";
import type { PushPullMessage } from "./codec.ts";
import type { ResolvedConfig } from "./config.ts";
import type { Clock } from "./transport.ts";

/** Where a node stands in joining its cluster (for readiness checks). */
export type JoinState = "idle" | "joining" | "joined" | "failed";

/** A snapshot of {@linkcode JoinState} with its history. */
export interface JoinStatus {
  /**
   * `idle`: no seeds configured and `join()` not called; `joining`: attempts under way;
   * `joined`: a seed (another node) answered, or the seed list was empty (a new cluster);
   * `failed`: the background join gave up (`retryJoinMax`) or every seed refused this node.
   */
  readonly state: JoinState;
  /** Join attempts made (each tries every resolved seed address once). */
  readonly attempts: number;
  /** Why the last attempt failed, if it did. */
  readonly lastError: string | undefined;
}

/** What one attempt over every seed found. */
export interface SeedAttempt {
  /** Exchanges that reached another node (0: not joined). */
  readonly joined: number;
  /** Addresses tried (other than this node's own). */
  readonly tried: readonly string[];
  /** Whether the seeds resolved to nothing but this node. */
  readonly selfOnly: boolean;
  /** A refusal retrying cannot fix (wrong key or label, another protocol), if any seed gave one. */
  readonly permanent: RpcError | undefined;
  /** A failure that may go away (unreachable, timed out, name not resolved), if any. */
  readonly transient: RpcError | undefined;
}

/** What a join attempt needs from the node. */
export interface JoinHost {
  /** This node's id. */
  readonly localId: string;
  /** Whether `addr` is this node's own gossip address. */
  isSelf(addr: HostPort): boolean;
  /** One push-pull with `addr` (join flag set); resolves with the peer's state. */
  exchange(addr: string, timeoutMs: number): Promise<PushPullMessage>;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * Default seed host resolution: IP literals as they are; `localhost` and `*.localhost` to
 * `127.0.0.1` and `::1` (RFC 6761: never sent to a DNS server); anything else with
 * `Deno.resolveDns`, A and AAAA records together. Rejects when nothing resolves.
 */
export async function defaultResolveHost(hostname: string): Promise<string[]> {
  if (IPV4.test(hostname) || hostname.includes(":")) return [hostname];
  const name = hostname.toLowerCase().replace(/\.$/, "");
  if (name === "localhost" || name.endsWith(".localhost")) return ["127.0.0.1", "::1"];
  const results = await Promise.allSettled([
    Deno.resolveDns(name, "A"),
    Deno.resolveDns(name, "AAAA"),
  ]);
  const out: string[] = [];
  for (const r of results) if (r.status === "fulfilled") out.push(...r.value);
  if (out.length === 0) {
    const why = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
    throw new Error(`cannot resolve ${hostname}: ${why?.reason?.message ?? "no A/AAAA records"}`);
  }
  return out;
}

/** Whether retrying cannot fix `e`: the seed refused us (keys, label) or is not this protocol. */
export function isPermanentJoinError(e: unknown): boolean {
  return e instanceof RpcError && (e.code === "unauthenticated" || e.code === "invalid_argument");
}

/**
 * Delay before background join attempt `attempt` (0-based): `base × 2^attempt` capped at `max`,
 * with ±20 % jitter so nodes started together do not retry in lockstep.
 */
export function retryJoinDelayMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number,
): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(exp * (0.8 + 0.4 * random())));
}

function asRpcError(e: unknown): RpcError {
  return e instanceof RpcError
    ? e
    : new RpcError("unavailable", String((e as Error)?.message ?? e));
}

/**
 * One attempt: resolves every seed, then exchanges state with every resolved address that is not
 * this node, in parallel, each within `timeoutMs`.
 */
export async function attemptJoin(
  host: JoinHost,
  seeds: readonly string[],
  timeoutMs: number,
  resolveHost: (hostname: string) => Promise<string[]>,
): Promise<SeedAttempt> {
  let transient: RpcError | undefined;
  let permanent: RpcError | undefined;
  const targets = new Set<string>();
  await Promise.all(seeds.map(async (seed) => {
    const hp = parseHostPort(seed);
    if (hp === undefined) return; // validated by the caller
    let ips: string[];
    try {
      ips = await resolveHost(hp.hostname);
    } catch (e) {
      transient = new RpcError("unavailable", `seed ${seed}: ${(e as Error)?.message ?? e}`);
      return;
    }
    for (const ip of ips) {
      const addr = { hostname: ip, port: hp.port };
      if (!host.isSelf(addr)) targets.add(formatHostPort(ip, hp.port));
    }
  }));
  const tried = [...targets];
  const results = await Promise.all(tried.map(async (addr) => {
    try {
      const state = await host.exchange(addr, timeoutMs);
      // A reply that names no member but us came from ourselves (e.g. through an address we
      // did not recognise as ours): it does not count.
      if (state.records.some((r) => r.node !== host.localId)) return 1;
      transient ??= new RpcError("unavailable", `${addr} is this node itself`);
      return 0;
    } catch (e) {
      const err = asRpcError(e);
      if (isPermanentJoinError(err)) permanent = err;
      else transient = err;
      return 0;
    }
  }));
  const joined = results.reduce((a: number, b) => a + b, 0);
  return {
    joined,
    tried,
    selfOnly: tried.length === 0 && transient === undefined,
    permanent,
    transient,
  };
}

/** What a {@linkcode Joiner} needs from the node beyond one attempt's {@linkcode JoinHost}. */
export interface JoinerHost extends JoinHost {
  /** Resolved configuration. */
  readonly config: ResolvedConfig;
  /** Time source. */
  readonly clock: Clock;
  /** Random source in [0, 1). */
  readonly random: () => number;
  /** Whether the node is still running. */
  readonly running: boolean;
  /** Resolves after `ms` (at once when the node shuts down). */
  sleep(ms: number): Promise<void>;
  /** Called once, when a join attempt first reaches another node. */
  onJoined(): void;
}

/**
 * The join state of one node: `join()` in the foreground, the `seeds` option in the background
 * (retried with capped exponential backoff), and the readiness promise both settle.
 */
export class Joiner {
  readonly #host: JoinerHost;
  readonly #resolveHost: (hostname: string) => Promise<string[]>;
  /** Seeds configured or passed to `join()`, re-joined while partitioned. */
  readonly seeds: string[];
  #state: JoinState = "idle";
  #error: RpcError | undefined;
  #attempts = 0;
  readonly #joined: Promise<void>;
  #resolveJoined!: () => void;
  #rejectJoined!: (e: RpcError) => void;

  /** @param seeds checked seed addresses; @param resolveHost resolves a seed's host name */
  constructor(
    host: JoinerHost,
    seeds: string[],
    resolveHost: (hostname: string) => Promise<string[]>,
  ) {
    this.#host = host;
    this.seeds = seeds;
    this.#resolveHost = resolveHost;
    this.#joined = new Promise<void>((resolve, reject) => {
      this.#resolveJoined = resolve;
      this.#rejectJoined = reject;
    });
    this.#joined.catch(() => {}); // rejections reach whoever awaits whenJoined()
  }

  /** Resolves once joined; rejects when the background join gives up. */
  whenJoined(): Promise<void> {
    return this.#joined;
  }

  /** Whether this node has joined. */
  get joined(): boolean {
    return this.#state === "joined";
  }

  /** Where joining stands. */
  status(): JoinStatus {
    return { state: this.#state, attempts: this.#attempts, lastError: this.#error?.message };
  }

  /**
   * Joins through `list` (checked) in the foreground, retried until another node answers or
   * `bootstrapTimeoutMs` passes; see `ClusterMembership.join`.
   */
  async join(list: readonly string[]): Promise<number> {
    const host = this.#host;
    for (const s of list) if (!this.seeds.includes(s)) this.seeds.push(s);
    if (list.length === 0) {
      this.markJoined();
      return 0;
    }
    if (this.#state === "idle" || this.#state === "failed") this.#state = "joining";
    const timeout = host.config.bootstrapTimeoutMs;
    const deadline = host.clock.now() + timeout;
    let last: SeedAttempt | undefined;
    while (host.running) {
      const remaining = deadline - host.clock.now();
      if (remaining <= 0) break;
      last = await this.attempt(list, remaining);
      if (last.joined > 0) return last.joined;
      if (last.permanent !== undefined && last.transient === undefined) {
        throw new RpcError(last.permanent.code, `join(): ${last.permanent.message}`, {
          cause: last.permanent,
        });
      }
      const left = deadline - host.clock.now();
      if (left <= 0) break;
      await host.sleep(Math.min(left, Math.max(50, host.config.probeIntervalMs)));
    }
    const err = last?.permanent ?? last?.transient;
    const why = last?.selfOnly
      ? ": they resolve only to this node (joining oneself does not count)"
      : err !== undefined
      ? `: ${err.message}`
      : "";
    throw new RpcError(
      "unavailable",
      `join(): no seed of ${list.join(", ")} answered within ${timeout} ms${why}`,
      { cause: err },
    );
  }

  /** One join attempt over `seeds`; marks the node joined when another node answered. */
  async attempt(seeds: readonly string[], timeoutMs: number): Promise<SeedAttempt> {
    this.#attempts++;
    const attempt = await attemptJoin(this.#host, seeds, timeoutMs, this.#resolveHost);
    if (attempt.joined > 0) {
      this.#error = undefined;
      if (!this.joined) {
        this.markJoined();
        this.#host.onJoined();
      }
    } else {
      this.#error = attempt.permanent ?? attempt.transient ??
        new RpcError("unavailable", "the seeds resolve only to this node");
    }
    return attempt;
  }

  /** Background join of the `seeds` option, with capped exponential backoff. */
  async retry(): Promise<void> {
    const host = this.#host;
    this.#state = "joining";
    const c = host.config;
    for (let attempt = 0; host.running && this.#state === "joining"; attempt++) {
      const a = await this.attempt(this.seeds, c.pushPullTimeoutMs);
      if (a.joined > 0 || !host.running || this.#state !== "joining") return;
      if (a.permanent !== undefined && a.transient === undefined) {
        return this.fail(a.permanent);
      }
      if (c.retryJoinMax > 0 && attempt + 1 >= c.retryJoinMax) {
        return this.fail(
          new RpcError(
            "unavailable",
            `no seed of ${
              this.seeds.join(", ")
            } answered in ${c.retryJoinMax} attempts: ${this.#error?.message}`,
          ),
        );
      }
      await host.sleep(
        retryJoinDelayMs(attempt, c.retryJoinIntervalMs, c.retryJoinMaxIntervalMs, host.random),
      );
    }
  }

  /** Marks the node joined (once). */
  markJoined(): void {
    if (this.#state === "joined") return;
    this.#state = "joined";
    this.#resolveJoined();
  }

  /** Gives up: `whenJoined()` rejects with `e`. */
  fail(e: RpcError): void {
    this.#state = "failed";
    this.#error = e;
    this.#rejectJoined(new RpcError(e.code, `join: ${e.message}`, { cause: e }));
  }

  /** Shutdown: a join still under way fails. */
  stop(): void {
    if (this.#state !== "joined" && this.#state !== "failed") {
      this.fail(new RpcError("unavailable", "membership shut down before it joined"));
    }
  }
}

/**
 * Whether `addr` (a resolved seed) is this node: its advertised gossip address `own`, the
 * transport's bound address `bound`, or, bound to a wildcard, loopback at the bound port.
 */
export function isOwnAddress(addr: HostPort, own: string, bound: string | undefined): boolean {
  const o = parseHostPort(own);
  const b = bound === undefined ? undefined : parseHostPort(bound);
  const same = (a: HostPort | undefined) =>
    a !== undefined && a.port === addr.port && a.hostname === addr.hostname;
  if (same(o) || same(b)) return true;
  // Bound to a wildcard: every local address with our port is us; loopback certainly is.
  const loopback = addr.hostname === "::1" || addr.hostname.startsWith("127.");
  return b !== undefined && b.port === addr.port && isWildcard(b.hostname) && loopback;
}
