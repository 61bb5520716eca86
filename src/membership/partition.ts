/**
 * Partition detection. The "stable view" is the set of live members once it has not changed for
 * `stableAfterMs` with no member suspected. When a majority of the stable view is unreachable (suspect or dead — members
 * that left gracefully do not count) the node reports `PartitionDetected`; the view then stays
 * frozen until a majority is reachable again, reported as `PartitionHealed`. Members failing one
 * by one do not trigger it: the view re-stabilises between failures. A node that is leaving
 * reports nothing.
 *
 * @module
 */
import type { MemberTable } from "./member_table.ts";

/** What a partition check concluded. */
export type PartitionChange =
  | { readonly type: "detected"; readonly reachable: string[]; readonly unreachable: string[] }
  | { readonly type: "healed"; readonly members: string[] }
  | undefined;

/** Tracks the stable view and detects partitions. */
export class PartitionDetector {
  #stable: string[] = [];
  #candidateVersion = -1;
  #candidateSince = 0;
  #stableVersion = -1;
  #checkedStateVersion = -1;
  #checkedStableVersion = -1;
  #partitioned = false;
  /** Partitions detected. */
  detected = 0;
  /** Partitions healed. */
  healed = 0;

  /** Whether a partition is currently reported. */
  get partitioned(): boolean {
    return this.#partitioned;
  }

  /** The last stable view (sorted ids, this node included). */
  get stableView(): readonly string[] {
    return this.#stable;
  }

  /** Runs one check at `now`. */
  check(table: MemberTable, now: number, stableAfterMs: number): PartitionChange {
    if (!this.#partitioned) {
      // Any state change (a suspicion included) restarts the clock; a view with suspects in it
      // is not stable, so members failing together keep counting against the old view.
      if (table.stateVersion !== this.#candidateVersion) {
        this.#candidateVersion = table.stateVersion;
        this.#candidateSince = now;
      } else if (
        this.#stableVersion !== this.#candidateVersion &&
        now - this.#candidateSince >= stableAfterMs &&
        table.ring.every((id) => table.get(id)?.state === "alive")
      ) {
        this.#stableVersion = this.#candidateVersion;
        this.#stable = [...table.ring];
      }
    }
    const view = this.#stable;
    if (view.length < 3) return undefined;
    // Leaving: the others going (and a peer whose leave was lost) is no partition of ours.
    if (table.local.state === "left") return undefined;
    // Nothing changed since the last check: same verdict.
    if (
      table.stateVersion === this.#checkedStateVersion &&
      this.#stableVersion === this.#checkedStableVersion
    ) return undefined;
    this.#checkedStateVersion = table.stateVersion;
    this.#checkedStableVersion = this.#stableVersion;
    const reachable: string[] = [];
    const unreachable: string[] = [];
    let counted = 0;
    for (const id of view) {
      const rec = table.get(id);
      if (rec !== undefined && rec.state === "left") continue;
      counted++;
      if (rec === undefined || rec.state !== "alive") unreachable.push(id);
      else reachable.push(id);
    }
    const majorityLost = unreachable.length * 2 > counted;
    if (!this.#partitioned && majorityLost) {
      this.#partitioned = true;
      this.detected++;
      return { type: "detected", reachable, unreachable };
    }
    if (this.#partitioned && reachable.length * 2 > counted) {
      this.#partitioned = false;
      this.healed++;
      // Restart stabilisation from the current view.
      this.#candidateVersion = table.stateVersion;
      this.#candidateSince = now;
      this.#stableVersion = table.stateVersion;
      this.#stable = [...table.ring];
      this.#checkedStableVersion = -1;
      return { type: "healed", members: reachable };
    }
    return undefined;
  }
}
