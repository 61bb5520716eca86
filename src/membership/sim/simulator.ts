/**
 * `simulate()`: runs N real `ClusterMembership` instances over a {@linkcode SimNetwork} in
 * {@linkcode VirtualClock} time and measures what issue 4 asks for — join convergence, failure
 * detection, false positives under loss and under paused nodes (Lifeguard on/off), gossip
 * bandwidth and heap per member.
 *
 * @module
 */
import { RpcError } from "../../errors.ts";
import type { ClusterEvent, ClusterEventType, Member } from "../types.ts";
import type { Clock, Transport } from "../transport.ts";
import { ClusterMembership, preloadMembers } from "../membership.ts";
import { SimNetwork } from "./network.ts";
import { SeededRandom } from "./rng.ts";
import { VirtualClock } from "./virtual_clock.ts";

/** What `simulate` measures. */
export type SimScenario = "join" | "crash" | "false-positives" | "paused";

/** Every scenario name. */
export const SIM_SCENARIOS: readonly SimScenario[] = ["join", "crash", "false-positives", "paused"];

/** The part of `ClusterMembership` the simulator drives. */
export interface SimMember {
  /** The node's id. */
  readonly localId: string;
  /** Starts protocol timers. */
  start(): Promise<void>;
  /** Joins through seeds; resolves with the number of seeds that answered. */
  join(seeds: string[]): Promise<number>;
  /** Abrupt stop. */
  shutdown(): Promise<void>;
  /** Snapshot of the member list. */
  members(): Member[];
  /** Event listener registration. */
  addEventListener(
    type: ClusterEventType,
    listener: (event: CustomEvent<ClusterEvent>) => void,
  ): void;
}

/** What the simulator passes to the member factory. */
export interface SimMemberConfig {
  /** Node id (`n0`, `n1`, …: short ids keep the per-member heap honest to the protocol). */
  id: string;
  /** The node's simulated transport. */
  transport: Transport;
  /** The node's (pausable) virtual clock. */
  clock: Clock;
  /** Timing profile. */
  profile: "LAN" | "WAN" | "LOCAL";
  /** Lifeguard switch. */
  lifeguard: boolean;
  /** Seeded random source for the node. */
  random: () => number;
}

/** Creates one member for the simulation. */
export type SimMemberFactory = (
  config: SimMemberConfig & Record<string, unknown>,
) => SimMember;

/** Options of {@linkcode simulate}. */
export interface SimOptions {
  /** Cluster size; default 100. */
  nodes?: number;
  /** What to measure; default `"join"`. */
  scenario?: SimScenario;
  /** Timing profile; default `"LAN"`. */
  profile?: "LAN" | "WAN" | "LOCAL";
  /** Datagram/stream loss probability during the measurement; default 0. */
  loss?: number;
  /** One-way latency floor, ms; default 0.5. */
  latencyMs?: number;
  /** Latency jitter, ms; default 0.5. */
  jitterMs?: number;
  /** Measurement window for `false-positives` and `paused`, virtual ms; default 60 000. */
  durationMs?: number;
  /**
   * Virtual time run after bootstrap convergence before any measurement starts, so the join
   * broadcasts drain and traffic is steady-state; default 10 000.
   */
  warmupMs?: number;
  /** Seed; equal seeds replay the same network draws and protocol choices. Default 1. */
  seed?: number;
  /** Lifeguard switch (`paused` runs both and ignores it); default true. */
  lifeguard?: boolean;
  /**
   * How the cluster forms before the measurement: `"gossip"` (default) replays it — seeds first,
   * then every node joins through them, and the run waits until each sees all; `"preloaded"`
   * starts every node already knowing every other as alive (no events, no gossip, as if learnt
   * from a sync), for sizes whose bootstrap costs too much to replay (10,000 nodes: 10⁸ record
   * transfers). Needs the default member factory.
   */
  bootstrap?: "gossip" | "preloaded";
  /** Nodes that bootstrap first; the rest join through them. Default 3. */
  seedNodes?: number;
  /** Joins are spread uniformly over this much virtual time; default `min(10 000, 2 × nodes)` ms. */
  joinSpreadMs?: number;
  /** Give up waiting for bootstrap convergence after this much virtual time; default 600 000. */
  convergeTimeoutMs?: number;
  /** `paused`: fraction of nodes paused at any time; default 0.05. */
  pauseFraction?: number;
  /** `paused`: length of each pause, ms; default 2000. */
  pauseMs?: number;
  /** Extra `ClusterMembership` config (timing overrides). */
  memberConfig?: Record<string, unknown>;
  /** Builds each member; default `new ClusterMembership(config)`. */
  createMember?: SimMemberFactory;
  /** Progress lines (virtual time, events, wall time). */
  onProgress?: (line: string) => void;
}

/** Summary statistics of a set of durations, ms. */
export interface SimDistribution {
  /** Median. */
  p50: number;
  /** 99th percentile. */
  p99: number;
  /** Maximum. */
  max: number;
  /** Samples. */
  count: number;
}

/** The result of {@linkcode simulate}. Times are virtual milliseconds. */
export interface SimReport {
  /** The options after defaults. */
  scenario: SimScenario;
  /** Cluster size. */
  nodes: number;
  /** Timing profile. */
  profile: string;
  /** Loss during the measurement. */
  loss: number;
  /** Seed. */
  seed: number;
  /** Bootstrap: all nodes joined (from the last join call) until every node saw all N alive. */
  bootstrap: {
    /** How the cluster formed (see {@linkcode SimOptions.bootstrap}). */
    mode: "gossip" | "preloaded";
    /** Whether every node saw every other alive before the timeout. */
    converged: boolean;
    /** Per-node time from the last `join()` call until it saw all N alive. */
    convergence: SimDistribution;
    /** Virtual ms from the first join to full convergence. */
    totalMs: number;
  };
  /** `join`: one fresh node joins the converged cluster; time until each node saw it alive. */
  joinReach?: SimDistribution & {
    /** Nodes that saw it within the window. */
    reached: number;
  };
  /** `crash`: one member crashes. */
  crash?: {
    /** Crashed member id. */
    id: string;
    /** Crash until the first NodeSuspect about it anywhere (ms; NaN if none). */
    firstSuspicionMs: number;
    /** Crash until the first NodeFailed anywhere. */
    firstFailedMs: number;
    /** Crash until every live node reported it failed (NaN if not within the window). */
    deadEverywhereMs: number;
    /** Live nodes that reported it failed. */
    reportedBy: number;
  };
  /** False positives during the measurement window: live members declared failed. */
  falsePositives: {
    /** NodeFailed events about members that had not crashed. */
    failed: number;
    /** NodeSuspect events about members that had not crashed (refuted later, usually). */
    suspicions: number;
    /** Distinct members wrongly declared failed. */
    distinctFailed: number;
    /** Distinct suspicion episodes (member, incarnation) of members that had not crashed. */
    suspicionEpisodes: number;
    /** NodeFailed events about members not paused in the previous 10 s (healthy members). */
    failedHealthy: number;
    /** Suspicion episodes of members not paused in the previous 10 s. */
    suspicionEpisodesHealthy: number;
  };
  /** `paused`: the same run with Lifeguard off. */
  pausedWithoutLifeguard?: SimReport["falsePositives"];
  /** Pauses injected in the `paused` scenario. */
  pausesInjected?: number;
  /** Gossip traffic in the steady-state window. */
  traffic: {
    /** Datagram bytes sent per node per second. */
    udpBytesPerNodePerSec: number;
    /** Datagram + stream bytes sent per node per second. */
    totalBytesPerNodePerSec: number;
    /** Datagrams sent per node per second. */
    packetsPerNodePerSec: number;
    /** Window length, virtual ms. */
    windowMs: number;
  };
  /** Heap: delta of `Deno.memoryUsage().heapUsed` between an empty and a converged cluster. */
  heap: {
    /** Bytes per member record held anywhere: delta / (N × N). */
    bytesPerMember: number;
    /** Bytes per node (its whole state): delta / N. */
    bytesPerNode: number;
    /** Resident set growth per member record: includes WebAssembly memory (phi windows). */
    rssBytesPerMember: number;
    /** Whether a forced GC preceded both samples (`--v8-flags=--expose-gc`). */
    gcForced: boolean;
  };
  /** Events run by the virtual clock. */
  events: number;
  /** Callbacks that threw inside the protocol (should be 0) and the last message. */
  protocolErrors: { count: number; last?: string };
  /** Wall-clock seconds the simulation took. */
  wallSeconds: number;
  /** Virtual seconds simulated. */
  virtualSeconds: number;
}

function dist(xs: number[]): SimDistribution {
  if (xs.length === 0) return { p50: NaN, p99: NaN, max: NaN, count: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return { p50: q(0.5), p99: q(0.99), max: s[s.length - 1], count: s.length };
}

function gc(): boolean {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === "function") {
    g();
    g();
    return true;
  }
  return false;
}

const defaultFactory: SimMemberFactory = (config) => new ClusterMembership(config);

interface Node {
  id: string;
  addr: string;
  member: SimMember;
  crashed: boolean;
  /**
   * Live peers this node currently sees (others, alive or suspect): +1 on NodeJoined, −1 on
   * NodeFailed/NodeLeft (a suspicion does not remove, so NodeRecovered does not add). A count,
   * not a set: at 10,000 nodes a set per node would hold 10⁸ entries of harness state.
   */
  live: number;
  convergedAt: number;
}

/**
 * Runs one simulation. Long runs: 1000 nodes take seconds to minutes of wall time; progress goes
 * to `onProgress`.
 *
 * @example
 * ```ts
 * import { simulate } from "@rpcnet/cluster/sim";
 * const r = await simulate({ nodes: 200, scenario: "crash", profile: "LAN" });
 * console.log(r.crash?.deadEverywhereMs);
 * ```
 *
 * @throws {RpcError} `invalid_argument` for bad options.
 */
export async function simulate(options: SimOptions = {}): Promise<SimReport> {
  const n = options.nodes ?? 100;
  const scenario = options.scenario ?? "join";
  const profile = options.profile ?? "LAN";
  const loss = options.loss ?? 0;
  if (!Number.isInteger(n) || n < 2 || n > 100_000) {
    throw new RpcError("invalid_argument", `nodes must be an integer 2..100000, got ${n}`);
  }
  if (!SIM_SCENARIOS.includes(scenario)) {
    throw new RpcError(
      "invalid_argument",
      `scenario must be one of ${SIM_SCENARIOS.join(", ")}, got ${scenario}`,
    );
  }
  if (!["LAN", "WAN", "LOCAL"].includes(profile)) {
    throw new RpcError("invalid_argument", `profile must be LAN, WAN or LOCAL, got ${profile}`);
  }
  if (!(loss >= 0 && loss < 1)) {
    throw new RpcError("invalid_argument", `loss must be within [0, 1), got ${loss}`);
  }
  const bootstrap = options.bootstrap ?? "gossip";
  if (bootstrap !== "gossip" && bootstrap !== "preloaded") {
    throw new RpcError(
      "invalid_argument",
      `bootstrap must be gossip or preloaded, got ${bootstrap}`,
    );
  }
  if (bootstrap === "preloaded" && options.createMember !== undefined) {
    throw new RpcError(
      "invalid_argument",
      'bootstrap "preloaded" needs the default member factory (no createMember)',
    );
  }
  if (scenario === "paused") {
    const on = await runOnce({ ...options, lifeguard: true });
    const off = await runOnce({ ...options, lifeguard: false });
    return {
      ...on,
      pausedWithoutLifeguard: off.falsePositives,
      wallSeconds: on.wallSeconds + off.wallSeconds,
    };
  }
  return await runOnce(options);
}

async function runOnce(options: SimOptions): Promise<SimReport> {
  const wall0 = performance.now();
  const n = options.nodes ?? 100;
  const scenario = options.scenario ?? "join";
  const profile = options.profile ?? "LAN";
  const loss = options.loss ?? 0;
  const seed = options.seed ?? 1;
  const lifeguard = options.lifeguard ?? true;
  const duration = options.durationMs ?? 60_000;
  const seedCount = Math.max(1, Math.min(options.seedNodes ?? 3, n));
  const spread = options.joinSpreadMs ?? Math.min(10_000, 2 * n);
  const convergeTimeout = options.convergeTimeoutMs ?? 600_000;
  const progress = options.onProgress ?? (() => {});
  const create = options.createMember ?? defaultFactory;
  const rng = new SeededRandom(seed ^ 0x5eed);

  const clock = new VirtualClock({ seed });
  const net = new SimNetwork({
    clock,
    latencyMs: options.latencyMs ?? 0.5,
    jitterMs: options.jitterMs ?? 0.5,
  });

  const gcForced = gc();
  const mem0 = Deno.memoryUsage();
  const heap0 = mem0.heapUsed;

  // Measurement state, filled by event listeners.
  const nodes: Node[] = [];
  const byId = new Map<string, Node>();
  let measuring = false;
  const fp = {
    failed: 0,
    suspicions: 0,
    distinct: new Set<string>(),
    episodes: new Set<string>(),
    failedHealthy: 0,
    episodesHealthy: new Set<string>(),
  };
  /** Virtual time each node's latest pause ends (paused scenario). */
  const pauseEnds = new Map<string, number>();
  const healthy = (id: string) => {
    const end = pauseEnds.get(id);
    return end === undefined || clock.now() - end > 10_000;
  };
  let watchId = ""; // the member whose suspicion/failure/join we time
  let watchStart = 0;
  let firstSuspicion = NaN;
  let firstFailed = NaN;
  const watchSeenAt = new Map<string, number>();
  let convergedCount = 0;

  const makeNode = (i: number): Node => {
    const id = `n${i}`;
    const transport = net.createTransport();
    const nodeRng = new SeededRandom(seed * 7919 + i);
    const member = create({
      ...(options.memberConfig ?? {}),
      id,
      transport,
      clock: transport.clock,
      profile,
      lifeguard,
      random: () => nodeRng.next(),
    });
    const node: Node = {
      id,
      addr: transport.localAddr,
      member,
      crashed: false,
      live: 0,
      convergedAt: NaN,
    };
    const onLive = (e: CustomEvent<ClusterEvent>) => {
      const ev = e.detail as { type: string; node: Member };
      if (ev.node.id === id) return;
      if (ev.type === "NodeJoined") node.live++;
      if (node.live === n - 1 && Number.isNaN(node.convergedAt) && i < n) {
        node.convergedAt = clock.now();
        convergedCount++;
      }
      if (ev.node.id === watchId && !watchSeenAt.has(id)) watchSeenAt.set(id, clock.now());
    };
    const onGone = (e: CustomEvent<ClusterEvent>) => {
      const ev = e.detail as { type: string; node: Member };
      if (ev.node.id !== id) node.live--;
      if (ev.type !== "NodeFailed") return;
      const subject = byId.get(ev.node.id);
      if (ev.node.id === watchId) {
        if (Number.isNaN(firstFailed)) firstFailed = clock.now() - watchStart;
        if (!watchSeenAt.has(id)) watchSeenAt.set(id, clock.now());
      } else if (measuring && subject && !subject.crashed) {
        fp.failed++;
        fp.distinct.add(ev.node.id);
        if (healthy(ev.node.id)) fp.failedHealthy++;
      }
    };
    member.addEventListener("NodeJoined", onLive);
    member.addEventListener("NodeRecovered", onLive);
    member.addEventListener("NodeFailed", onGone);
    member.addEventListener("NodeLeft", onGone);
    member.addEventListener("NodeSuspect", (e) => {
      const ev = e.detail as { node: Member };
      if (ev.node.id === watchId) {
        if (Number.isNaN(firstSuspicion)) firstSuspicion = clock.now() - watchStart;
      } else if (measuring && !byId.get(ev.node.id)?.crashed) {
        fp.suspicions++;
        const key = `${ev.node.id}@${ev.node.incarnation}`;
        fp.episodes.add(key);
        if (healthy(ev.node.id)) fp.episodesHealthy.add(key);
      }
    });
    nodes.push(node);
    byId.set(id, node);
    return node;
  };

  const report = (phase: string) =>
    progress(
      `[sim ${scenario} n=${n}${scenario === "paused" ? ` lifeguard=${lifeguard}` : ""}] ${phase}` +
        ` t=${(clock.now() / 1000).toFixed(1)}s converged=${convergedCount}/${n}` +
        ` events=${clock.eventsRun} wall=${((performance.now() - wall0) / 1000).toFixed(1)}s`,
    );

  /** Advances virtual time in 1 s steps, reporting at most every 5 s of wall time. */
  const advanceReporting = async (ms: number, phase: string) => {
    const end = clock.now() + ms;
    let last = performance.now();
    while (clock.now() < end) {
      await clock.advance(Math.min(1000, end - clock.now()));
      if (performance.now() - last > 5000) {
        last = performance.now();
        report(phase);
      }
    }
  };

  // --- bootstrap: seeds first, then everyone joins through them, spread over `spread` ms ---
  for (let i = 0; i < n; i++) makeNode(i);
  const seedAddrs = nodes.slice(0, seedCount).map((x) => x.addr);
  const joinFailures: unknown[] = [];
  const joinOne = (node: Node, seeds: string[]) => {
    const attempt = (left: number) => {
      node.member.join(seeds).catch((e) => {
        if (left > 0) clock.setTimeout(() => attempt(left - 1), 1000);
        else joinFailures.push(e);
      });
    };
    attempt(5);
  };
  let joinStart = clock.now();
  let lastJoinAt = clock.now();
  let converged: boolean;
  if (options.bootstrap === "preloaded") {
    const seeds = nodes.map((x) => ({
      id: x.id,
      gossipAddr: x.addr,
      rpcAddr: "",
      incarnation: 0,
      tags: {},
    }));
    // Before start(), so each node's timers (the push-pull interval grows with N) see the full
    // view, as they would on a node that has run for a while.
    for (const node of nodes) {
      preloadMembers(node.member as ClusterMembership, seeds);
      await node.member.start();
      node.live = n - 1;
      node.convergedAt = clock.now();
    }
    convergedCount = n;
    converged = true;
  } else {
    for (const node of nodes) await node.member.start();
    for (let i = 1; i < seedCount; i++) joinOne(nodes[i], [seedAddrs[0]]);
    await clock.advance(100);
    joinStart = lastJoinAt = clock.now();
    for (let i = seedCount; i < n; i++) {
      const at = clock.now() + (spread * (i - seedCount)) / Math.max(1, n - seedCount);
      lastJoinAt = Math.max(lastJoinAt, at);
      const node = nodes[i];
      const seedAddr = seedAddrs[rng.int(seedAddrs.length)];
      clock.setTimeout(() => joinOne(node, [seedAddr]), at - clock.now());
    }
    let lastReport = performance.now();
    converged = await clock.runUntilCondition(
      () => {
        if (performance.now() - lastReport > 5000) {
          lastReport = performance.now();
          report("bootstrap");
        }
        return convergedCount === n;
      },
      convergeTimeout,
      250,
    );
  }
  report(converged ? "bootstrap converged" : "bootstrap TIMED OUT");
  const bootstrap = {
    mode: options.bootstrap ?? "gossip",
    converged,
    convergence: dist(
      nodes.filter((x) => !Number.isNaN(x.convergedAt)).map((x) =>
        Math.max(0, x.convergedAt - lastJoinAt)
      ),
    ),
    totalMs: clock.now() - joinStart,
  };

  // Heap after convergence (before measurement garbage accumulates).
  const gcForced2 = gc();
  const mem1 = Deno.memoryUsage();
  const heapDelta = Math.max(0, mem1.heapUsed - heap0);
  const rssDelta = Math.max(0, mem1.rss - mem0.rss);

  // --- steady-state window for traffic (and the scenario itself) ---
  await advanceReporting(options.warmupMs ?? 10_000, "warm-up");
  net.setLoss(loss);
  const totals0 = net.totals();
  const window0 = clock.now();
  measuring = true;
  const result: Partial<SimReport> = {};

  if (scenario === "join") {
    // One fresh node joins the converged cluster; time until each node sees it.
    await advanceReporting(5000, "warm-up");
    const fresh = makeNode(n);
    await fresh.member.start();
    watchId = fresh.id;
    watchStart = clock.now();
    watchSeenAt.clear();
    joinOne(fresh, seedAddrs);
    await clock.runUntilCondition(() => watchSeenAt.size >= n, 60_000, 50);
    const times = [...watchSeenAt.values()].map((t) => t - watchStart);
    result.joinReach = { ...dist(times), reached: watchSeenAt.size };
    report(`join reached ${watchSeenAt.size}/${n}`);
  } else if (scenario === "crash") {
    await clock.advance(5000);
    const victim = nodes[seedCount + rng.int(n - seedCount)] ?? nodes[n - 1];
    watchId = victim.id;
    watchSeenAt.clear();
    watchStart = clock.now();
    victim.crashed = true;
    net.crash(victim.addr);
    const liveCount = n - 1;
    const done = await clock.runUntilCondition(
      () => watchSeenAt.size >= liveCount,
      Math.max(60_000, duration),
      50,
    );
    const times = [...watchSeenAt.values()];
    result.crash = {
      id: victim.id,
      firstSuspicionMs: firstSuspicion,
      firstFailedMs: firstFailed,
      deadEverywhereMs: done ? Math.max(...times) - watchStart : NaN,
      reportedBy: watchSeenAt.size,
    };
    report(`crash detected by ${watchSeenAt.size}/${liveCount}`);
  } else if (scenario === "false-positives") {
    const end = clock.now() + duration;
    while (clock.now() < end) {
      await clock.runUntil(Math.min(end, clock.now() + 10_000));
      report("measuring");
    }
  } else {
    // paused: keep `pauseFraction` of the nodes paused, each pause `pauseMs`, staggered.
    const fraction = options.pauseFraction ?? 0.05;
    const pauseMs = options.pauseMs ?? 2000;
    const tick = 100;
    const perTick = (fraction * n * tick) / pauseMs;
    let carry = 0;
    let injected = 0;
    const end = clock.now() + duration;
    while (clock.now() < end) {
      carry += perTick;
      while (carry >= 1) {
        carry -= 1;
        const victim = nodes[rng.int(n)];
        if (!net.isPaused(victim.addr)) {
          net.pause(victim.addr, pauseMs);
          pauseEnds.set(victim.id, clock.now() + pauseMs);
          injected++;
        }
      }
      await clock.advance(tick);
      if (clock.now() % 10_000 < tick) report("measuring");
    }
    result.pausesInjected = injected;
  }

  const windowMs = clock.now() - window0;
  const totals1 = net.totals();
  const liveNodes = nodes.filter((x) => !x.crashed).length;
  const perNodeSec = (v: number) => v / liveNodes / (windowMs / 1000);
  const udpBytes = totals1.bytesOut - totals0.bytesOut;
  const streamBytes = totals1.streamBytesOut - totals0.streamBytesOut;

  const out: SimReport = {
    scenario,
    nodes: n,
    profile,
    loss,
    seed,
    bootstrap,
    ...result,
    falsePositives: {
      failed: fp.failed,
      suspicions: fp.suspicions,
      distinctFailed: fp.distinct.size,
      suspicionEpisodes: fp.episodes.size,
      failedHealthy: fp.failedHealthy,
      suspicionEpisodesHealthy: fp.episodesHealthy.size,
    },
    traffic: {
      udpBytesPerNodePerSec: perNodeSec(udpBytes),
      totalBytesPerNodePerSec: perNodeSec(udpBytes + streamBytes),
      packetsPerNodePerSec: perNodeSec(totals1.packetsOut - totals0.packetsOut),
      windowMs,
    },
    heap: {
      bytesPerMember: heapDelta / (n * n),
      bytesPerNode: heapDelta / n,
      rssBytesPerMember: rssDelta / (n * n),
      gcForced: gcForced && gcForced2,
    },
    events: clock.eventsRun,
    protocolErrors: {
      count: clock.errors + joinFailures.length,
      last: clock.lastError !== undefined
        ? String((clock.lastError as Error)?.stack ?? clock.lastError).slice(0, 500)
        : joinFailures.length
        ? String(joinFailures[0])
        : undefined,
    },
    wallSeconds: (performance.now() - wall0) / 1000,
    virtualSeconds: clock.now() / 1000,
  };

  // Stop everything (timers of the virtual clock are simply dropped with it).
  for (const node of nodes) {
    if (!node.crashed) net.crash(node.addr);
  }
  await Promise.allSettled(nodes.map((x) => x.member.shutdown()));
  return out;
}

/** Renders a {@linkcode SimReport} as readable text. */
export function formatSimReport(r: SimReport): string {
  const ms = (v: number) => Number.isNaN(v) ? "n/a" : `${(v / 1000).toFixed(2)} s`;
  const d = (x: SimDistribution) =>
    `p50 ${ms(x.p50)}  p99 ${ms(x.p99)}  max ${ms(x.max)}  (${x.count} nodes)`;
  const lines = [
    `scenario ${r.scenario}: ${r.nodes} nodes, profile ${r.profile}, loss ${
      (r.loss * 100).toFixed(1)
    } %, seed ${r.seed}`,
    r.bootstrap.mode === "preloaded"
      ? "bootstrap: preloaded (every node started knowing all others alive)"
      : `bootstrap: ${r.bootstrap.converged ? "converged" : "DID NOT CONVERGE"} in ${
        ms(r.bootstrap.totalMs)
      }; per node after last join: ${d(r.bootstrap.convergence)}`,
  ];
  if (r.joinReach) {
    lines.push(`join reach (new node seen alive by every node): ${d(r.joinReach)}`);
  }
  if (r.crash) {
    lines.push(
      `crash of ${r.crash.id}: first suspicion ${ms(r.crash.firstSuspicionMs)}, first failed ${
        ms(r.crash.firstFailedMs)
      }, dead everywhere ${ms(r.crash.deadEverywhereMs)} (${r.crash.reportedBy} nodes)`,
    );
  }
  const fp = (f: SimReport["falsePositives"]) =>
    `${f.failed} failed declarations (${f.distinctFailed} members; ${f.failedHealthy} about healthy ` +
    `members), ${f.suspicionEpisodes} suspicion episodes (${f.suspicionEpisodesHealthy} of healthy ` +
    `members; ${f.suspicions} suspect events)`;
  lines.push(`false positives: ${fp(r.falsePositives)}`);
  if (r.pausedWithoutLifeguard) {
    lines.push(
      `  (lifeguard on; ${r.pausesInjected ?? "?"} pauses injected)`,
      `false positives without lifeguard: ${fp(r.pausedWithoutLifeguard)}`,
    );
  }
  lines.push(
    `traffic: ${r.traffic.udpBytesPerNodePerSec.toFixed(0)} B/s UDP per node, ${
      r.traffic.totalBytesPerNodePerSec.toFixed(0)
    } B/s incl. push-pull, ${r.traffic.packetsPerNodePerSec.toFixed(1)} pkt/s (over ${
      ms(r.traffic.windowMs)
    })`,
    `heap: ${r.heap.bytesPerMember.toFixed(0)} B per member record (N×N), ${
      (r.heap.bytesPerNode / 1024).toFixed(1)
    } KiB per node; RSS ${r.heap.rssBytesPerMember.toFixed(0)} B per member${
      r.heap.gcForced ? "" : " (no forced GC: run with --v8-flags=--expose-gc)"
    }`,
    `cost: ${r.events} events, ${r.virtualSeconds.toFixed(1)} virtual s in ${
      r.wallSeconds.toFixed(1)
    } wall s; protocol errors ${r.protocolErrors.count}${
      r.protocolErrors.last ? ` (last: ${r.protocolErrors.last.split("\n")[0]})` : ""
    }`,
  );
  return lines.join("\n");
}
