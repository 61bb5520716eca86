/**
 * The simulation harness: N members on a {@linkcode SimNetwork} in {@linkcode VirtualClock} time,
 * listeners that record what their events say (convergence, the watched member, false
 * positives), the cluster's bootstrap and the measurement window that ends in a
 * {@linkcode SimReport}. The scenarios (`simulator.ts`) drive it.
 *
 * @module
 */
import type { ClusterEvent, ClusterEventType, Member } from "../types.ts";
import type { Clock, Transport } from "../transport.ts";
import { ClusterMembership, preloadMembers } from "../membership.ts";
import { SimNetwork, type SimTrafficStats } from "./network.ts";
import { SeededRandom } from "./rng.ts";
import { VirtualClock } from "./virtual_clock.ts";
import {
  distribution,
  FalsePositiveTally,
  heapSummary,
  type SimReport,
  type SimScenario,
  trafficSummary,
} from "./report.ts";

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

/** Options of `simulate`. */
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

/** One simulated node as the harness tracks it. */
export interface HarnessNode {
  /** The node's id (`n0`, `n1`, …). */
  id: string;
  /** Its simulated gossip address. */
  addr: string;
  /** The member under test. */
  member: SimMember;
  /** Crashed on purpose by the scenario (its failure is not a false positive). */
  crashed: boolean;
  /**
   * Live peers this node currently sees (others, alive or suspect): +1 on NodeJoined, −1 on
   * NodeFailed/NodeLeft (a suspicion does not remove, so NodeRecovered does not add). A count,
   * not a set: at 10,000 nodes a set per node would hold 10⁸ entries of harness state.
   */
  live: number;
  /** Virtual time it first saw all N − 1 others live (NaN until then). */
  convergedAt: number;
}

/** A member whose suspicion, failure or arrival a scenario times. */
export interface WatchedMember {
  /** Its id ("" while nothing is watched). */
  id: string;
  /** Virtual time the watch began. */
  start: number;
  /** From `start` to the first NodeSuspect about it anywhere, ms (NaN until then). */
  firstSuspicion: number;
  /** From `start` to the first NodeFailed about it anywhere, ms (NaN until then). */
  firstFailed: number;
  /** Node id → virtual time that node first saw the member (joined, or failed). */
  seenAt: Map<string, number>;
}

function watching(id: string, start: number): WatchedMember {
  return { id, start, firstSuspicion: NaN, firstFailed: NaN, seenAt: new Map() };
}

/** How long after its pause ends a member counts as healthy again, ms. */
const HEALTHY_AFTER_PAUSE_MS = 10_000;

const defaultFactory: SimMemberFactory = (config) => new ClusterMembership(config);

function gc(): boolean {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === "function") {
    g();
    g();
    return true;
  }
  return false;
}

/**
 * One simulation run: create it (the network and N members), {@linkcode bootstrap} the cluster,
 * {@linkcode openWindow} for the measurement, let a scenario act, then {@linkcode finish}.
 */
export class SimHarness {
  /** Cluster size (the scenario may add one node beyond it). */
  readonly n: number;
  /** The scenario being run. */
  readonly scenario: SimScenario;
  /** The options as given (defaults applied where read). */
  readonly options: SimOptions;
  /** Measurement window of the timed scenarios, virtual ms. */
  readonly durationMs: number;
  /** How many of the first nodes are seeds. */
  readonly seedCount: number;
  /** The shared virtual clock. */
  readonly clock: VirtualClock;
  /** The simulated network. */
  readonly net: SimNetwork;
  /** The harness's own draws (join seeds, victims), apart from the members' and the network's. */
  readonly rng: SeededRandom;
  /** Every node, in creation order. */
  readonly nodes: HarnessNode[] = [];
  /** Gossip addresses of the seed nodes. */
  readonly seedAddrs: string[];

  readonly #wallStart = performance.now();
  readonly #profile: "LAN" | "WAN" | "LOCAL";
  readonly #seed: number;
  readonly #lifeguard: boolean;
  readonly #create: SimMemberFactory;
  readonly #progress: (line: string) => void;
  readonly #byId = new Map<string, HarnessNode>();
  readonly #falsePositives = new FalsePositiveTally();
  /** Virtual time each node's latest pause ends (paused scenario). */
  readonly #pauseEnds = new Map<string, number>();
  readonly #joinFailures: unknown[] = [];
  #measuring = false;
  #watch = watching("", 0);
  #convergedCount = 0;
  #gcForced: boolean;
  readonly #memStart: Deno.MemoryUsage;
  #heapDelta = 0;
  #rssDelta = 0;
  #bootstrap?: SimReport["bootstrap"];
  #windowStart = 0;
  #totalsAtWindow?: SimTrafficStats;

  /** Builds the network and the `n` members (not started). */
  constructor(options: SimOptions) {
    this.options = options;
    this.n = options.nodes ?? 100;
    this.scenario = options.scenario ?? "join";
    this.#profile = options.profile ?? "LAN";
    this.#seed = options.seed ?? 1;
    this.#lifeguard = options.lifeguard ?? true;
    this.durationMs = options.durationMs ?? 60_000;
    this.seedCount = Math.max(1, Math.min(options.seedNodes ?? 3, this.n));
    this.#create = options.createMember ?? defaultFactory;
    this.#progress = options.onProgress ?? (() => {});
    this.rng = new SeededRandom(this.#seed ^ 0x5eed);
    this.clock = new VirtualClock({ seed: this.#seed });
    this.net = new SimNetwork({
      clock: this.clock,
      latencyMs: options.latencyMs ?? 0.5,
      jitterMs: options.jitterMs ?? 0.5,
    });
    // The empty-cluster sample of the heap measurement.
    this.#gcForced = gc();
    this.#memStart = Deno.memoryUsage();
    for (let i = 0; i < this.n; i++) this.addNode(i);
    this.seedAddrs = this.nodes.slice(0, this.seedCount).map((x) => x.addr);
  }

  /** The member currently timed by the scenario, with what was seen of it so far. */
  get watched(): Readonly<WatchedMember> {
    return this.#watch;
  }

  /** Creates node `i` (`n<i>`) with the harness's listeners. */
  addNode(i: number): HarnessNode {
    const { clock, n } = this;
    const id = `n${i}`;
    const transport = this.net.createTransport();
    const nodeRng = new SeededRandom(this.#seed * 7919 + i);
    const member = this.#create({
      ...(this.options.memberConfig ?? {}),
      id,
      transport,
      clock: transport.clock,
      profile: this.#profile,
      lifeguard: this.#lifeguard,
      random: () => nodeRng.next(),
    });
    const node: HarnessNode = {
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
        this.#convergedCount++;
      }
      const watch = this.#watch;
      if (ev.node.id === watch.id && !watch.seenAt.has(id)) watch.seenAt.set(id, clock.now());
    };
    const onGone = (e: CustomEvent<ClusterEvent>) => {
      const ev = e.detail as { type: string; node: Member };
      if (ev.node.id !== id) node.live--;
      if (ev.type !== "NodeFailed") return;
      const subject = this.#byId.get(ev.node.id);
      const watch = this.#watch;
      if (ev.node.id === watch.id) {
        if (Number.isNaN(watch.firstFailed)) watch.firstFailed = clock.now() - watch.start;
        if (!watch.seenAt.has(id)) watch.seenAt.set(id, clock.now());
      } else if (this.#measuring && subject && !subject.crashed) {
        this.#falsePositives.failed(ev.node.id, this.#healthy(ev.node.id));
      }
    };
    member.addEventListener("NodeJoined", onLive);
    member.addEventListener("NodeRecovered", onLive);
    member.addEventListener("NodeFailed", onGone);
    member.addEventListener("NodeLeft", onGone);
    member.addEventListener("NodeSuspect", (e) => {
      const ev = e.detail as { node: Member };
      const watch = this.#watch;
      if (ev.node.id === watch.id) {
        if (Number.isNaN(watch.firstSuspicion)) watch.firstSuspicion = clock.now() - watch.start;
      } else if (this.#measuring && !this.#byId.get(ev.node.id)?.crashed) {
        this.#falsePositives.suspected(
          ev.node.id,
          ev.node.incarnation,
          this.#healthy(ev.node.id),
        );
      }
    });
    this.nodes.push(node);
    this.#byId.set(id, node);
    return node;
  }

  /** Not paused within the last {@linkcode HEALTHY_AFTER_PAUSE_MS}. */
  #healthy(id: string): boolean {
    const end = this.#pauseEnds.get(id);
    return end === undefined || this.clock.now() - end > HEALTHY_AFTER_PAUSE_MS;
  }

  /** Starts timing member `id` from now: its suspicion, failure, or arrival at each node. */
  watch(id: string): void {
    this.#watch = watching(id, this.clock.now());
  }

  /** Records that the scenario paused `node` until virtual time `until`. */
  paused(node: HarnessNode, until: number): void {
    this.#pauseEnds.set(node.id, until);
  }

  /** Joins `node` through `seeds`, retrying a failed join up to 5 times a second apart. */
  join(node: HarnessNode, seeds: string[]): void {
    const attempt = (left: number) => {
      node.member.join(seeds).catch((e) => {
        if (left > 0) this.clock.setTimeout(() => attempt(left - 1), 1000);
        else this.#joinFailures.push(e);
      });
    };
    attempt(5);
  }

  /** Sends a progress line about `phase`. */
  progress(phase: string): void {
    const { scenario, n, clock } = this;
    this.#progress(
      `[sim ${scenario} n=${n}${
        scenario === "paused" ? ` lifeguard=${this.#lifeguard}` : ""
      }] ${phase}` +
        ` t=${(clock.now() / 1000).toFixed(1)}s converged=${this.#convergedCount}/${n}` +
        ` events=${clock.eventsRun} wall=${
          ((performance.now() - this.#wallStart) / 1000).toFixed(1)
        }s`,
    );
  }

  /** Advances virtual time in 1 s steps, reporting at most every 5 s of wall time. */
  async advanceReporting(ms: number, phase: string): Promise<void> {
    const { clock } = this;
    const end = clock.now() + ms;
    let last = performance.now();
    while (clock.now() < end) {
      await clock.advance(Math.min(1000, end - clock.now()));
      if (performance.now() - last > 5000) {
        last = performance.now();
        this.progress(phase);
      }
    }
  }

  /**
   * Forms the cluster (by gossip or preloaded, see `SimOptions.bootstrap`), then samples the
   * heap of the converged cluster before measurement garbage accumulates.
   */
  async bootstrap(): Promise<void> {
    const { clock, nodes, n } = this;
    let joinStart = clock.now();
    let lastJoinAt = clock.now();
    let converged: boolean;
    if (this.options.bootstrap === "preloaded") {
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
      this.#convergedCount = n;
      converged = true;
    } else {
      // Seeds first, then everyone joins through them, spread over `joinSpreadMs`.
      const spread = this.options.joinSpreadMs ?? Math.min(10_000, 2 * n);
      const { seedCount, seedAddrs } = this;
      for (const node of nodes) await node.member.start();
      for (let i = 1; i < seedCount; i++) this.join(nodes[i], [seedAddrs[0]]);
      await clock.advance(100);
      joinStart = lastJoinAt = clock.now();
      for (let i = seedCount; i < n; i++) {
        const at = clock.now() + (spread * (i - seedCount)) / Math.max(1, n - seedCount);
        lastJoinAt = Math.max(lastJoinAt, at);
        const node = nodes[i];
        const seedAddr = seedAddrs[this.rng.int(seedAddrs.length)];
        clock.setTimeout(() => this.join(node, [seedAddr]), at - clock.now());
      }
      let lastReport = performance.now();
      converged = await clock.runUntilCondition(
        () => {
          if (performance.now() - lastReport > 5000) {
            lastReport = performance.now();
            this.progress("bootstrap");
          }
          return this.#convergedCount === n;
        },
        this.options.convergeTimeoutMs ?? 600_000,
        250,
      );
    }
    this.progress(converged ? "bootstrap converged" : "bootstrap TIMED OUT");
    this.#bootstrap = {
      mode: this.options.bootstrap ?? "gossip",
      converged,
      convergence: distribution(
        nodes.filter((x) => !Number.isNaN(x.convergedAt)).map((x) =>
          Math.max(0, x.convergedAt - lastJoinAt)
        ),
      ),
      totalMs: clock.now() - joinStart,
    };
    const gcForced = gc();
    const mem = Deno.memoryUsage();
    this.#gcForced &&= gcForced;
    this.#heapDelta = Math.max(0, mem.heapUsed - this.#memStart.heapUsed);
    this.#rssDelta = Math.max(0, mem.rss - this.#memStart.rss);
  }

  /**
   * After the warm-up, turns on the measurement loss and starts the steady-state window: traffic
   * is counted and false positives tallied from here on.
   */
  async openWindow(): Promise<void> {
    await this.advanceReporting(this.options.warmupMs ?? 10_000, "warm-up");
    this.net.setLoss(this.options.loss ?? 0);
    this.#totalsAtWindow = this.net.totals();
    this.#windowStart = this.clock.now();
    this.#measuring = true;
  }

  /** Closes the window, stops every node and returns the report with the scenario's `result`. */
  async finish(result: Partial<SimReport>): Promise<SimReport> {
    const { clock, net, nodes, n } = this;
    const windowMs = clock.now() - this.#windowStart;
    const liveNodes = nodes.filter((x) => !x.crashed).length;
    const joinFailures = this.#joinFailures;
    const report: SimReport = {
      scenario: this.scenario,
      nodes: n,
      profile: this.#profile,
      loss: this.options.loss ?? 0,
      seed: this.#seed,
      bootstrap: this.#bootstrap!,
      ...result,
      falsePositives: this.#falsePositives.summary(),
      traffic: trafficSummary(this.#totalsAtWindow!, net.totals(), liveNodes, windowMs),
      heap: heapSummary(this.#heapDelta, this.#rssDelta, n, this.#gcForced),
      events: clock.eventsRun,
      protocolErrors: {
        count: clock.errors + joinFailures.length,
        last: clock.lastError !== undefined
          ? String((clock.lastError as Error)?.stack ?? clock.lastError).slice(0, 500)
          : joinFailures.length
          ? String(joinFailures[0])
          : undefined,
      },
      wallSeconds: (performance.now() - this.#wallStart) / 1000,
      virtualSeconds: clock.now() / 1000,
    };
    // Stop everything (timers of the virtual clock are simply dropped with it).
    for (const node of nodes) {
      if (!node.crashed) net.crash(node.addr);
    }
    await Promise.allSettled(nodes.map((x) => x.member.shutdown()));
    return report;
  }
}
