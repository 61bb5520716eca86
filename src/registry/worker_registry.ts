/**
 * WorkerRegistry: the nodes a call may be routed to, filtered by tags and picked by a balancer.
 *
 * Candidate sets are prepared once per canonical filter and kept until a membership event
 * changes the picture (join, leave, failure, suspicion, recovery, tag update). Failed and left
 * nodes are dropped synchronously from the event, before the next selection.
 *
 * @module
 */

import { RpcError } from "../errors.ts";
import type {
  ClusterEvent,
  ClusterEventType,
  Member,
  MembershipView,
  MemberState,
  Tags,
} from "../membership/types.ts";
import { Balancer, type StrategyName } from "../balance/balancer.ts";
import {
  checkFilter,
  describeFilter,
  type FilterInput,
  parseFilter,
  type TagFilter,
} from "./filter.ts";
import {
  checkBoolean,
  checkInt,
  checkNumber,
  checkPlainObject,
  checkString,
  invalidOption,
} from "../options.ts";

/** A prepared set of candidate ids, as a balancer returns it. */
export interface WorkerCandidateSet {
  /** The candidate ids. */
  readonly ids: readonly string[];
  /** How many candidates. */
  readonly size: number;
}

/**
 * What the registry needs from a load balancer. `Balancer` (the wasm-backed one) implements it;
 * the registry only adds/removes members and selects, the client feeds load.
 */
export interface WorkerBalancer {
  /** The strategy's name, for display. */
  readonly strategy: string;
  /** Makes `id` selectable (weight used by weighted strategies). */
  add(id: string, weight?: number): void;
  /** Forgets `id` and its load statistics. */
  remove(id: string): void;
  /** Whether `id` is known. */
  has(id: string): boolean;
  /** Prepares a candidate set for repeated selection. */
  candidates(ids: readonly string[]): WorkerCandidateSet;
  /** Picks one candidate (`key` for affinity strategies); `undefined` when none is selectable. */
  select(set: WorkerCandidateSet, key?: string): string | undefined;
  /** A call to `id` began. */
  start(id: string): void;
  /** A call to `id` ended after `latencyMs`, successfully or not. */
  finish(id: string, latencyMs: number, ok: boolean): void;
  /** Skips `id` in selection until `untilMs` (the balancer's clock). */
  eject(id: string, untilMs: number): void;
  /** Calls in flight to `id`. */
  active(id: string): number;
  /** Frees a candidate set that will not be selected from again (optional). */
  release?(set: WorkerCandidateSet): void;
}

/** A node that can take calls, as handed out by {@linkcode WorkerRegistry}. */
export interface Worker {
  /** The node id. */
  readonly id: string;
  /** A display label: the node's `label` tag, or its id. */
  readonly label: string;
  /** The node's RPC address, `host:port`. */
  readonly addr: string;
  /** The node's tags. */
  readonly tags: Tags;
  /** SWIM state when the candidate list was built (`alive` or `suspect`). */
  readonly state: MemberState;
}

/**
 * Options of {@linkcode WorkerRegistry}.
 *
 * @example
 * ```ts
 * import {
 *   type ClusterMembership,
 *   WorkerRegistry,
 *   type WorkerRegistryOptions,
 * } from "@rpcnet/cluster";
 *
 * declare const cluster: ClusterMembership; // started and joined
 * const options: WorkerRegistryOptions = {
 *   strategy: "weighted_random",
 *   weightTag: "capacity", // a worker tagged capacity=4 gets about 4× the calls of capacity=1
 *   excludeSuspect: true,
 *   includeLocal: false,
 *   defaultFilter: "role=worker",
 * };
 * const workers = new WorkerRegistry(cluster, options);
 * ```
 */
export interface WorkerRegistryOptions {
  /** Strategy of the balancer created when `balancer` is not given. Default `"least_connections"`. */
  strategy?: StrategyName;
  /** Seed of that balancer's random choices (deterministic tests). Default random. */
  seed?: number;
  /**
   * That balancer's `tieStreak` (`least_connections`: picks in a row a tie goes to the worker
   * picked last; 1 breaks every tie at random). Default 1023.
   */
  tieStreak?: number;
  /**
   * That balancer's `tieStreakMs` (`least_connections`: the longest a streak lasts, ms; 0: no
   * time bound). Default 250.
   */
  tieStreakMs?: number;
  /**
   * The balancer that picks among candidates. Default: `new Balancer({strategy, seed,
   * tieStreak, tieStreakMs})`.
   */
  balancer?: WorkerBalancer;
  /** Leave suspect nodes out of selection until they recover. Default `false`. */
  excludeSuspect?: boolean;
  /** Whether this node itself may be selected when it matches. Default `true`. */
  includeLocal?: boolean;
  /** Filter used when a call gives none. Default: every node that serves RPC. */
  defaultFilter?: FilterInput;
  /** Tag whose numeric value is a worker's weight for weighted strategies. Default `"weight"`. */
  weightTag?: string;
  /** Most distinct filters kept prepared at once. Default 256. */
  maxCachedFilters?: number;
}

/**
 * Options of one selection.
 *
 * @example
 * ```ts
 * import type { WorkerRegistry } from "@rpcnet/cluster";
 *
 * declare const workers: WorkerRegistry;
 * const first = workers.selectWorker("role=worker", { key: "user-42" });
 * // A second try goes elsewhere.
 * const second = workers.selectWorker("role=worker", { exclude: new Set([first.id]) });
 * ```
 */
export interface SelectOptions {
  /** Affinity key for consistent hashing. */
  key?: string;
  /** Ids not to pick (e.g. workers already tried by this call). */
  exclude?: ReadonlySet<string>;
}

interface Prepared {
  filter: TagFilter;
  set: WorkerCandidateSet;
  byId: Map<string, Worker>;
  list: Worker[];
}

const EVENTS: ClusterEventType[] = [
  "NodeJoined",
  "NodeLeft",
  "NodeFailed",
  "NodeSuspect",
  "NodeRecovered",
  "NodeUpdated",
];

/**
 * Tag-filtered, load-balanced selection of worker nodes.
 *
 * @example
 * ```ts
 * import { type ClusterMembership, WorkerRegistry } from "@rpcnet/cluster";
 *
 * declare const cluster: ClusterMembership; // started and joined
 * const workers = new WorkerRegistry(cluster, { strategy: "least_connections" });
 * const worker = workers.selectWorker("role=worker");
 * console.log(`Selected worker: ${worker.label} at ${worker.addr}`);
 * ```
 */
export class WorkerRegistry {
  /** The membership this registry reads. */
  readonly membership: MembershipView;
  /** The balancer that picks workers; the client feeds it each call's load and outcome. */
  readonly balancer: WorkerBalancer;
  /** Whether suspect nodes are left out of selection. */
  readonly excludeSuspect: boolean;
  /** Whether this node itself may be selected. */
  readonly includeLocal: boolean;

  #defaultFilter: TagFilter;
  #weightTag: string;
  #maxCached: number;
  #prepared = new Map<string, Prepared>();
  #eligible: Worker[] | undefined;
  /**
   * Ids gone according to events (with the event's stateChangedAt), so a member table that lags
   * the event cannot hand out a failed node; a later state change in the table wins.
   */
  #gone = new Map<string, number>();
  #generation = 0;
  #closed = false;
  #onEvent = (e: CustomEvent<ClusterEvent>): void => this.#handle(e.detail);

  /**
   * Creates a registry listening to `membership`'s events.
   *
   * @param membership the membership to read (usually a started `ClusterMembership`)
   * @param options strategy (or a balancer) and selection options
   * @throws {RpcError} `invalid_argument` naming the first bad option (a malformed default
   *   filter, an unknown strategy, …)
   */
  constructor(membership: MembershipView, options: WorkerRegistryOptions = {}) {
    const o = checkPlainObject("WorkerRegistry options", options) as WorkerRegistryOptions;
    if (o.balancer !== undefined) {
      const b = o.balancer as Partial<WorkerBalancer> | null;
      if (typeof b !== "object" || b === null || typeof b.select !== "function") {
        throw invalidOption("balancer", "a balancer (such as new Balancer(...))", o.balancer);
      }
    }
    if (o.seed !== undefined) checkNumber("seed", o.seed, 0, -(2 ** 53), 2 ** 53);
    this.excludeSuspect = checkBoolean("excludeSuspect", o.excludeSuspect, false);
    this.includeLocal = checkBoolean("includeLocal", o.includeLocal, true);
    this.#defaultFilter = checkFilter("defaultFilter", o.defaultFilter);
    this.#weightTag = checkString("weightTag", o.weightTag, "weight");
    this.#maxCached = checkInt("maxCachedFilters", o.maxCachedFilters, 256, 1, 1 << 20);
    this.membership = membership;
    this.balancer = o.balancer ??
      new Balancer({
        strategy: o.strategy ?? "least_connections",
        seed: o.seed,
        tieStreak: o.tieStreak,
        tieStreakMs: o.tieStreakMs,
      });
    for (const t of EVENTS) membership.addEventListener(t, this.#onEvent);
  }

  /** Bumped whenever the candidate picture changes; lets callers cache derived data. */
  get generation(): number {
    return this.#generation;
  }

  /** How many workers pass the default filter right now. */
  get count(): number {
    return this.#prepare(undefined).list.length;
  }

  /**
   * Every selectable worker passing `filter` (default filter when omitted), sorted by id.
   *
   * @throws {RpcError} `invalid_argument` for a malformed filter
   */
  workers(filter?: FilterInput): Worker[] {
    return [...this.#prepare(filter).list];
  }

  /**
   * Picks one worker passing `filter` with the balancer's strategy.
   *
   * @throws {RpcError} `unavailable` naming the filter when no worker matches (or all matching
   *   ones are ejected or excluded); `invalid_argument` for a malformed filter
   */
  selectWorker(filter?: FilterInput, options?: SelectOptions): Worker {
    const w = this.trySelectWorker(filter, options);
    if (w) return w;
    const p = this.#prepare(filter);
    const why = p.list.length === 0
      ? `no worker matches filter ${describeFilter(p.filter)}`
      : `all ${p.list.length} worker(s) matching filter ${describeFilter(p.filter)} are ` +
        `ejected or already tried`;
    throw new RpcError("unavailable", why);
  }

  /** Like {@linkcode WorkerRegistry.selectWorker}, but `undefined` instead of throwing. */
  trySelectWorker(filter?: FilterInput, options?: SelectOptions): Worker | undefined {
    const p = this.#prepare(filter);
    const exclude = options?.exclude;
    if (!exclude || exclude.size === 0) {
      const id = this.balancer.select(p.set, options?.key);
      return id === undefined ? undefined : p.byId.get(id);
    }
    const ids = p.set.ids.filter((id) => !exclude.has(id));
    if (ids.length === 0) return undefined;
    const set = this.balancer.candidates(ids);
    try {
      const id = this.balancer.select(set, options?.key);
      return id === undefined ? undefined : p.byId.get(id);
    } finally {
      this.balancer.release?.(set);
    }
  }

  /** The worker with this id when it is currently selectable (any filter), else `undefined`. */
  getWorker(id: string): Worker | undefined {
    return this.#allEligible().find((w) => w.id === id);
  }

  /** Stops listening to membership events. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of EVENTS) this.membership.removeEventListener(t, this.#onEvent);
    this.#releaseAll();
  }

  #handle(event: ClusterEvent): void {
    if (!("node" in event)) return;
    const id = event.node.id;
    if (event.type === "NodeFailed" || event.type === "NodeLeft") {
      this.#gone.set(id, event.node.stateChangedAt);
      if (this.balancer.has(id)) this.balancer.remove(id);
    } else if (event.type === "NodeJoined" || event.type === "NodeRecovered") {
      this.#gone.delete(id);
    }
    this.#invalidate();
  }

  #invalidate(): void {
    this.#generation++;
    this.#releaseAll();
    this.#eligible = undefined;
  }

  #releaseAll(): void {
    if (this.balancer.release) {
      for (const p of this.#prepared.values()) this.balancer.release(p.set);
    }
    this.#prepared.clear();
  }

  #isEligible(m: Member): boolean {
    const goneAt = this.#gone.get(m.id);
    if (goneAt !== undefined) {
      if (m.stateChangedAt <= goneAt) return false;
      this.#gone.delete(m.id);
    }
    if (m.rpcAddr === "") return false;
    if (!this.includeLocal && m.id === this.membership.localId) return false;
    return m.state === "alive" || (m.state === "suspect" && !this.excludeSuspect);
  }

  #allEligible(): Worker[] {
    if (this.#eligible) return this.#eligible;
    const eligible: Worker[] = [];
    const seen = new Set<string>();
    for (const m of this.membership.members()) {
      if (m.state === "dead" || m.state === "left") {
        if (this.balancer.has(m.id)) this.balancer.remove(m.id);
        continue;
      }
      if (!this.#isEligible(m)) continue;
      seen.add(m.id);
      if (!this.balancer.has(m.id)) {
        const weight = Number(m.tags[this.#weightTag]);
        this.balancer.add(m.id, Number.isFinite(weight) && weight > 0 ? weight : undefined);
      }
      eligible.push({
        id: m.id,
        label: m.tags.label ?? m.id,
        addr: m.rpcAddr,
        tags: m.tags,
        state: m.state,
      });
    }
    eligible.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.#eligible = eligible;
    return eligible;
  }

  #prepare(input: FilterInput): Prepared {
    const filter = input === undefined ? this.#defaultFilter : parseFilter(input);
    const hit = this.#prepared.get(filter.canonical);
    if (hit) return hit;
    const list = this.#allEligible().filter((w) => filter.matches(w.tags));
    const byId = new Map(list.map((w) => [w.id, w]));
    const p: Prepared = {
      filter,
      set: this.balancer.candidates(list.map((w) => w.id)),
      byId,
      list,
    };
    if (this.#prepared.size >= this.#maxCached) {
      const oldest = this.#prepared.keys().next().value!;
      this.balancer.release?.(this.#prepared.get(oldest)!.set);
      this.#prepared.delete(oldest);
    }
    this.#prepared.set(filter.canonical, p);
    return p;
  }
}
