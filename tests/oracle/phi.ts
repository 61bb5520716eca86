/**
 * Oracle: Akka-style phi accrual in plain TypeScript, one object per member (reference for
 * src/detector; used only by tests and bench).
 *
 * @module
 */
import { phiOfZ } from "./normal.ts";

interface History {
  ring: number[]; // intervals minus the shift
  head: number;
  count: number;
  sum: number;
  sumSq: number;
  last: number;
  minStd: number;
  pause: number;
}

/** Options mirror PhiAccrualDetector's. */
export interface OraclePhiOptions {
  threshold?: number;
  maxSampleSize?: number;
  minStdDeviationMs?: number;
  acceptableHeartbeatPauseMs?: number;
  firstHeartbeatEstimateMs?: number;
}

/** Reference phi accrual detector. */
export class OraclePhiDetector {
  readonly threshold: number;
  readonly window: number;
  readonly minStd: number;
  readonly pause: number;
  readonly estimate: number;
  readonly members = new Map<string, History>();

  constructor(o: OraclePhiOptions = {}) {
    this.threshold = o.threshold ?? 8;
    this.window = o.maxSampleSize ?? 1000;
    this.minStd = o.minStdDeviationMs ?? 100;
    this.pause = o.acceptableHeartbeatPauseMs ?? 0;
    this.estimate = o.firstHeartbeatEstimateMs ?? 1000;
  }

  #push(h: History, interval: number): void {
    const d = interval - this.estimate;
    if (h.count === this.window) {
      const old = h.ring[h.head];
      h.sum -= old;
      h.sumSq -= old * old;
    } else {
      h.count++;
    }
    h.ring[h.head] = d;
    h.sum += d;
    h.sumSq += d * d;
    h.head++;
    if (h.head === this.window) {
      h.head = 0;
      h.sum = 0;
      h.sumSq = 0;
      for (const x of h.ring) {
        h.sum += x;
        h.sumSq += x * x;
      }
    }
  }

  /** Mean with pause and clamped standard deviation. */
  stats(h: History): { mean: number; std: number } {
    const m1 = h.sum / h.count;
    const variance = Math.max(0, h.sumSq / h.count - m1 * m1);
    const std = Math.sqrt(variance);
    return { mean: this.estimate + m1 + h.pause, std: std > h.minStd ? std : h.minStd };
  }

  #phi(h: History, now: number): number {
    const { mean, std } = this.stats(h);
    return phiOfZ((now - h.last - mean) / std);
  }

  heartbeat(id: string, now: number): void {
    const h = this.members.get(id);
    if (!h) {
      const n: History = {
        ring: [],
        head: 0,
        count: 0,
        sum: 0,
        sumSq: 0,
        last: now,
        minStd: this.minStd,
        pause: this.pause,
      };
      const quarter = this.estimate / 4;
      this.#push(n, this.estimate - quarter);
      this.#push(n, this.estimate + quarter);
      this.members.set(id, n);
      return;
    }
    const interval = now - h.last;
    if (!(interval >= 0)) return;
    if (this.#phi(h, now) < this.threshold) this.#push(h, interval);
    h.last = now;
  }

  phi(id: string, now: number): number {
    const h = this.members.get(id);
    return h ? this.#phi(h, now) : 0;
  }

  phiAll(now: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, h] of this.members) out.set(id, this.#phi(h, now));
    return out;
  }

  suspects(now: number, threshold = this.threshold): string[] {
    const out: string[] = [];
    for (const [id, h] of this.members) if (this.#phi(h, now) >= threshold) out.push(id);
    return out;
  }

  configure(id: string, minStd: number, pause: number): void {
    const h = this.members.get(id)!;
    h.minStd = minStd;
    h.pause = pause;
  }

  remove(id: string): void {
    this.members.delete(id);
  }
}
