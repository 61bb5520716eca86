/**
 * Phi accrual over a fixed, small set of monitored members: this node's K successors on the ring
 * of sorted member ids (Akka's monitored-by-nr-of-members, Rapid's observers). Random SWIM probing
 * gives no regular arrivals at large N, so each monitored member gets a heartbeat ping every
 * heartbeat interval; ack inter-arrivals feed the phi detector (the wasm core). Phi over the
 * threshold starts an (indirect) probe, whose failure raises a suspicion; the other monitors of
 * the same member raise theirs independently, which are Lifeguard's confirmations.
 *
 * Memory is O(K) per node, whatever N is.
 *
 * @module
 */
import { PhiAccrualDetector } from "../detector/mod.ts";
import type { ResolvedConfig } from "./config.ts";
import type { ProtocolHost } from "./protocol_host.ts";
import { type AckRegistry, type Prober, sendPing } from "./probe.ts";

/** The part of `PhiAccrualDetector` the monitors use (a shared detector may be injected). */
export interface PhiDetector {
  /** Records an arrival. */
  heartbeat(id: string, nowMs: number): void;
  /** Current phi; 0 for unknown ids. */
  phi(id: string, nowMs: number): number;
  /** Forgets an id. */
  remove(id: string): void;
  /** Whether the id has had a heartbeat. */
  has(id: string): boolean;
}

/** The default phi detector of a node, sized for its monitored members. */
export function createPhiDetector(config: ResolvedConfig): PhiDetector {
  return new PhiAccrualDetector({
    threshold: config.phiThreshold,
    maxSampleSize: config.phiMaxSampleSize,
    minStdDeviationMs: config.phiMinStdDeviationMs,
    acceptableHeartbeatPauseMs: config.phiAcceptablePauseMs,
    firstHeartbeatEstimateMs: config.heartbeatIntervalMs,
    capacity: Math.max(1, config.monitoredMembers * 2),
  });
}

/** Heartbeat monitoring of the K ring successors. */
export class Monitors {
  readonly #host: ProtocolHost;
  readonly #acks: AckRegistry;
  readonly #prober: Prober;
  readonly #detector: PhiDetector;
  readonly #prefix: string;
  #monitored: string[] = [];
  #tableVersion = -1;
  readonly #probing = new Set<string>();
  /** Heartbeat pings sent. */
  heartbeats = 0;
  /** Probes started because phi crossed the threshold. */
  phiProbes = 0;

  /**
   * @param detector phi detector; ids are prefixed with `keyPrefix` (for a detector shared by
   * many simulated nodes)
   */
  constructor(
    host: ProtocolHost,
    acks: AckRegistry,
    prober: Prober,
    detector: PhiDetector,
    keyPrefix = "",
  ) {
    this.#host = host;
    this.#acks = acks;
    this.#prober = prober;
    this.#detector = detector;
    this.#prefix = keyPrefix;
  }

  /** Ids currently monitored. */
  get monitored(): readonly string[] {
    return this.#monitored;
  }

  /** Phi of `id` when monitored, else 0. */
  phi(id: string): number {
    const key = this.#prefix + id;
    if (!this.#detector.has(key)) return 0;
    const v = this.#detector.phi(key, this.#host.clock.now());
    return Number.isFinite(v) ? v : Number.MAX_VALUE;
  }

  #refresh(): void {
    const { table, config } = this.#host;
    if (table.version === this.#tableVersion) return;
    this.#tableVersion = table.version;
    const next = table.successors(table.localId, config.monitoredMembers);
    for (const id of this.#monitored) {
      if (!next.includes(id)) this.#detector.remove(this.#prefix + id);
    }
    this.#monitored = next;
  }

  /** One heartbeat round: ping every monitored member, then act on phi. */
  tick(): void {
    const host = this.#host;
    this.#refresh();
    const now = host.clock.now();
    const threshold = host.config.phiThreshold;
    for (const id of this.#monitored) {
      const rec = host.table.get(id);
      if (rec === undefined || !rec.live) continue;
      const key = this.#prefix + id;
      const seq = host.nextSeq();
      this.heartbeats++;
      this.#acks.register(
        seq,
        host.config.heartbeatIntervalMs * 4,
        () => this.#detector.heartbeat(key, host.clock.now()),
        () => {},
      );
      sendPing(host, rec, seq, false);
      if (this.#probing.has(id) || !this.#detector.has(key)) continue;
      if (this.#detector.phi(key, now) > threshold) {
        this.#probing.add(id);
        this.phiProbes++;
        this.#prober.probe(rec, () => this.#probing.delete(id));
      }
    }
  }

  /** Forgets every monitored member (shutdown). */
  clear(): void {
    for (const id of this.#monitored) this.#detector.remove(this.#prefix + id);
    this.#monitored = [];
    this.#probing.clear();
  }
}
