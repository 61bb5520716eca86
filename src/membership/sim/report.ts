/**
 * What a simulation reports: the {@linkcode SimReport} shape, the tallies and summaries that turn
 * raw measurements into its sections, and {@linkcode formatSimReport} which renders it as text.
 *
 * @module
 */
import type { SimTrafficStats } from "./network.ts";

/** What `simulate` measures. */
export type SimScenario = "join" | "crash" | "false-positives" | "paused";

/** Every scenario name. */
export const SIM_SCENARIOS: readonly SimScenario[] = ["join", "crash", "false-positives", "paused"];

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

/** The result of `simulate`. Times are virtual milliseconds. */
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
    /** How the cluster formed (see `SimOptions.bootstrap`). */
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

/** The median, 99th percentile and maximum of `xs` (all NaN when empty). */
export function distribution(xs: number[]): SimDistribution {
  if (xs.length === 0) return { p50: NaN, p99: NaN, max: NaN, count: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return { p50: q(0.5), p99: q(0.99), max: s[s.length - 1], count: s.length };
}

/**
 * Counts false positives as the members' events report them: NodeFailed and NodeSuspect about
 * members that had not crashed, split by whether the subject was healthy (not recently paused).
 */
export class FalsePositiveTally {
  #failed = 0;
  #suspicions = 0;
  #failedHealthy = 0;
  readonly #distinctFailed = new Set<string>();
  readonly #episodes = new Set<string>();
  readonly #episodesHealthy = new Set<string>();

  /** A NodeFailed about the live member `id`. */
  failed(id: string, healthy: boolean): void {
    this.#failed++;
    this.#distinctFailed.add(id);
    if (healthy) this.#failedHealthy++;
  }

  /** A NodeSuspect about the live member `id` at `incarnation` (one episode per incarnation). */
  suspected(id: string, incarnation: number, healthy: boolean): void {
    this.#suspicions++;
    const episode = `${id}@${incarnation}`;
    this.#episodes.add(episode);
    if (healthy) this.#episodesHealthy.add(episode);
  }

  /** The report's `falsePositives` section. */
  summary(): SimReport["falsePositives"] {
    return {
      failed: this.#failed,
      suspicions: this.#suspicions,
      distinctFailed: this.#distinctFailed.size,
      suspicionEpisodes: this.#episodes.size,
      failedHealthy: this.#failedHealthy,
      suspicionEpisodesHealthy: this.#episodesHealthy.size,
    };
  }
}

/** The report's `traffic` section: what `nodes` sent between two network totals, per second. */
export function trafficSummary(
  before: SimTrafficStats,
  after: SimTrafficStats,
  nodes: number,
  windowMs: number,
): SimReport["traffic"] {
  const perNodeSec = (v: number) => v / nodes / (windowMs / 1000);
  const udpBytes = after.bytesOut - before.bytesOut;
  const streamBytes = after.streamBytesOut - before.streamBytesOut;
  return {
    udpBytesPerNodePerSec: perNodeSec(udpBytes),
    totalBytesPerNodePerSec: perNodeSec(udpBytes + streamBytes),
    packetsPerNodePerSec: perNodeSec(after.packetsOut - before.packetsOut),
    windowMs,
  };
}

/** The report's `heap` section: memory growth of forming an `nodes`-node cluster. */
export function heapSummary(
  heapDelta: number,
  rssDelta: number,
  nodes: number,
  gcForced: boolean,
): SimReport["heap"] {
  return {
    bytesPerMember: heapDelta / (nodes * nodes),
    bytesPerNode: heapDelta / nodes,
    rssBytesPerMember: rssDelta / (nodes * nodes),
    gcForced,
  };
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
