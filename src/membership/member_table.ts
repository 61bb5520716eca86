/**
 * Every member this node knows, and SWIM's precedence rules for updating them.
 *
 * Rules (SWIM paper, memberlist): a higher incarnation (in serial-number order, see
 * `incarnation.ts`) always wins; at equal incarnation
 * dead/left beat suspect, which beats alive. Only the member itself raises its incarnation, so a
 * message that would change our own record is answered with a refutation instead. Dead and left
 * members stay as tombstones until reaped, so a stale alive record from a later sync (same or
 * lower incarnation) cannot resurrect them.
 *
 * The table only decides; the caller ({@linkcode ClusterMembership}) performs the side effects
 * (events, broadcasts, suspicion timers) from the returned {@linkcode UpdateOutcome}.
 *
 * @module
 */
import type { AliveMessage, DeadMessage, LeaveMessage, SuspectMessage } from "./codec.ts";
import { STATE_CODES as STATES, STATE_NUMBERS as STATE_CODE } from "./codec.ts";
import { compareIncarnation } from "./incarnation.ts";
import { internIdentity, type MemberIdentity, sameTags } from "./intern.ts";
import type { MemberState, Tags } from "./types.ts";

/**
 * Time origin of every record's `stateChangedAt`: times are kept as whole milliseconds since
 * the first record was made, so they stay small integers (no boxed heap number per record).
 */
let timeOrigin: number | undefined;

/**
 * Mutable internal record of one member.
 *
 * Why this layout: every node holds a record for every member, so at N nodes in one process
 * (the simulator) there are N² of them. The parts that only change with a new incarnation (id,
 * addresses, tags) live in one interned {@linkcode MemberIdentity} shared by every table that
 * holds the same values; the record keeps only a pointer to it, the incarnation, a state code
 * and the time of the last state change, all small integers.
 */
export class MemberRecord {
  #identity: MemberIdentity;
  /** Incarnation. */
  incarnation: number;
  #state: number;
  #changedAt: number;

  /** Creates a record (identity interned: every node's copy shares one). */
  constructor(
    id: string,
    gossipAddr: string,
    rpcAddr: string,
    incarnation: number,
    state: MemberState,
    tags: Tags,
    now: number,
  ) {
    this.#identity = internIdentity(id, gossipAddr, rpcAddr, tags);
    this.incarnation = incarnation;
    this.#state = STATE_CODE[state];
    this.#changedAt = 0;
    this.stateChangedAt = now;
  }

  /** Member id. */
  get id(): string {
    return this.#identity.id;
  }

  /** Gossip address. */
  get gossipAddr(): string {
    return this.#identity.gossipAddr;
  }

  set gossipAddr(addr: string) {
    this.setIdentity(addr, this.rpcAddr, this.tags);
  }

  /** RPC address. */
  get rpcAddr(): string {
    return this.#identity.rpcAddr;
  }

  /** Tags (frozen object, replaced on change). */
  get tags(): Tags {
    return this.#identity.tags;
  }

  set tags(tags: Tags) {
    this.setIdentity(this.gossipAddr, this.rpcAddr, tags);
  }

  /** Replaces addresses and tags at once (one interned identity). */
  setIdentity(gossipAddr: string, rpcAddr: string, tags: Tags): void {
    this.#identity = internIdentity(this.#identity.id, gossipAddr, rpcAddr, tags);
  }

  /** State. */
  get state(): MemberState {
    return STATES[this.#state];
  }

  set state(state: MemberState) {
    this.#state = STATE_CODE[state];
  }

  /** Clock time of the last state change, whole milliseconds. */
  get stateChangedAt(): number {
    return this.#changedAt + timeOrigin!;
  }

  set stateChangedAt(now: number) {
    const ms = Math.round(now);
    timeOrigin ??= ms;
    this.#changedAt = ms - timeOrigin;
  }

  /** Whether the member takes part in the protocol (alive or suspect). */
  get live(): boolean {
    return this.#state <= 1;
  }
}

/** An alive member to {@linkcode MemberTable.preload}. */
export interface MemberSeed {
  /** Member id. */
  readonly id: string;
  /** Gossip address. */
  readonly gossipAddr: string;
  /** RPC address. */
  readonly rpcAddr: string;
  /** Incarnation. */
  readonly incarnation: number;
  /** Tags. */
  readonly tags: Tags;
}

/**
 * What an update did:
 * - `ignored`: stale or redundant, nothing changed;
 * - `full`: a new member while the table holds `maxMembers` records: refused, counted;
 * - `implausible`: an incarnation 2^30 or more ahead of the one held (forged; see
 *   `incarnation.ts`): nothing changed, the caller counts it;
 * - `conflict`: the member's id at another gossip address while it is live (or our own id
 *   elsewhere): two processes claim one id; nothing changed;
 * - `refute`: it contradicts our own record: raise our incarnation and broadcast alive;
 * - `joined`: a new member (or a tombstoned one back with a higher incarnation: `rejoined`);
 * - `recovered`: a suspect member proved alive with a higher incarnation;
 * - `updated`: an alive member changed tags or RPC address; `refreshed`: only its incarnation;
 * - `suspected`: alive → suspect; `confirm`: another suspicion of an already suspect member;
 * - `failed`: → dead; `left`: → left.
 */
export type UpdateOutcome =
  | "ignored"
  | "implausible"
  | "full"
  | "conflict"
  | "refute"
  | "joined"
  | "rejoined"
  | "recovered"
  | "updated"
  | "refreshed"
  | "suspected"
  | "confirm"
  | "failed"
  | "left";

/** Details of the last {@linkcode MemberTable} update, for events. */
export interface UpdateDetail {
  /** The record after the update (undefined when the message was about an unknown member). */
  record: MemberRecord | undefined;
  /** Tags before the update. */
  previousTags: Tags;
  /** State before the update. */
  previousState: MemberState | undefined;
}

/** Binary search: index of the first element ≥ `id` in sorted `arr`. */
function lowerBound(arr: readonly string[], id: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid] < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The member table: records by id, a sorted ring of live member ids (for monitors and random
 * selection) and a tombstone queue for reaping.
 */
export class MemberTable {
  /** This node's id. */
  readonly localId: string;
  readonly #members = new Map<string, MemberRecord>();
  /**
   * Ids of live (alive or suspect) members, this node included; sorted lazily: additions are
   * appended and the ring is sorted on the next ordered read (TimSort on a mostly sorted array
   * is linear), so a sync adding 10,000 members sorts once instead of splicing per id.
   */
  #ring: string[] = [];
  #ringSorted = true;
  /** Most records held (tombstones included); new members past it are refused. */
  readonly maxMembers: number;
  /** New members refused because the table was full. */
  refusedFull = 0;
  /** Ids that became dead/left, in order (may contain stale entries; checked on reap). */
  #tombstones: string[] = [];
  #tombHead = 0;
  /** Bumped on every change of the live set. */
  version = 0;
  /** Bumped on every state change (alive/suspect/dead/left) or membership change. */
  stateVersion = 0;
  /** Details of the last update. */
  readonly last: UpdateDetail = { record: undefined, previousTags: {}, previousState: undefined };

  /** Creates the table holding only the local member. */
  constructor(local: MemberRecord, maxMembers = Infinity) {
    this.localId = local.id;
    this.maxMembers = maxMembers;
    this.#members.set(local.id, local);
    this.#ringAdd(local.id);
  }

  /** The local member's record. */
  get local(): MemberRecord {
    return this.#members.get(this.localId)!;
  }

  /** Number of records, tombstones included. */
  get size(): number {
    return this.#members.size;
  }

  /** Number of live members (this node included): the N of the protocol's formulas. */
  get liveCount(): number {
    return this.#ring.length;
  }

  /** Sorted live ids (do not mutate). */
  get ring(): readonly string[] {
    return this.#sortedRing();
  }

  #sortedRing(): string[] {
    if (!this.#ringSorted) {
      // Default sort orders by UTF-16 code units, as `<` does in lowerBound.
      this.#ring.sort();
      this.#ringSorted = true;
    }
    return this.#ring;
  }

  /** One record. */
  get(id: string): MemberRecord | undefined {
    return this.#members.get(id);
  }

  /** All records. */
  values(): IterableIterator<MemberRecord> {
    return this.#members.values();
  }

  /** Adds a live id (callers guarantee it is not on the ring: only a state change adds it). */
  #ringAdd(id: string): void {
    const ring = this.#ring;
    if (this.#ringSorted && ring.length > 0 && ring[ring.length - 1] > id) this.#ringSorted = false;
    ring.push(id);
    this.version++;
    this.stateVersion++;
  }

  #ringRemove(id: string): void {
    const ring = this.#sortedRing();
    const i = lowerBound(ring, id);
    if (this.#ring[i] === id) {
      this.#ring.splice(i, 1);
      this.version++;
    }
  }

  #setState(rec: MemberRecord, state: MemberState, now: number): void {
    const wasLive = rec.live;
    this.stateVersion++;
    rec.state = state;
    rec.stateChangedAt = now;
    const isLive = rec.live;
    if (wasLive && !isLive) {
      this.#ringRemove(rec.id);
      this.#tombstones.push(rec.id);
    } else if (!wasLive && isLive) this.#ringAdd(rec.id);
  }

  /** A new alive record in the map (the caller places it on the ring). */
  #insertAlive(
    id: string,
    gossipAddr: string,
    rpcAddr: string,
    incarnation: number,
    tags: Tags,
    now: number,
  ): MemberRecord {
    const rec = new MemberRecord(id, gossipAddr, rpcAddr, incarnation, "alive", tags, now);
    this.#members.set(rec.id, rec);
    return rec;
  }

  #begin(rec: MemberRecord | undefined): void {
    this.last.record = rec;
    this.last.previousTags = rec ? rec.tags : {};
    this.last.previousState = rec?.state;
  }

  /** Applies an alive message. */
  applyAlive(m: AliveMessage, now: number): UpdateOutcome {
    const rec = this.#members.get(m.node);
    this.#begin(rec);
    if (rec === undefined) {
      if (this.#members.size >= this.maxMembers) {
        this.refusedFull++;
        return "full";
      }
      const created = this.#insertAlive(
        m.node,
        m.gossipAddr,
        m.rpcAddr,
        m.incarnation,
        m.tags,
        now,
      );
      this.#ringAdd(created.id);
      this.last.record = created;
      return "joined";
    }
    if (m.node === this.localId) {
      // Our id at another address: another process claims it (memberlist's rule). Refuting
      // would start a war of incarnations in which the cluster flips between the two.
      if (m.gossipAddr !== rec.gossipAddr) return "conflict";
      const order = compareIncarnation(m.incarnation, rec.incarnation);
      if (order === "implausible") return "implausible";
      if (order === "newer") return "refute";
      if (
        order === "equal" &&
        (m.gossipAddr !== rec.gossipAddr || m.rpcAddr !== rec.rpcAddr ||
          !sameTags(m.tags, rec.tags))
      ) return "refute";
      return "ignored";
    }
    const order = compareIncarnation(m.incarnation, rec.incarnation);
    if (order === "older") return "ignored";
    if (order === "implausible") return "implausible";
    // A live member's address only changes after it is dead or left (a restart elsewhere is
    // accepted once the old process is declared failed); otherwise two processes share an id.
    if (m.gossipAddr !== rec.gossipAddr && rec.live) return "conflict";
    if (order === "equal") return "ignored";
    const prev = rec.state;
    const changed = m.rpcAddr !== rec.rpcAddr || !sameTags(m.tags, rec.tags);
    rec.incarnation = m.incarnation;
    if (changed || m.gossipAddr !== rec.gossipAddr) {
      rec.setIdentity(m.gossipAddr, m.rpcAddr, changed ? m.tags : rec.tags);
    }
    if (prev !== "alive") this.#setState(rec, "alive", now);
    if (prev === "dead" || prev === "left") return "rejoined";
    if (prev === "suspect") return "recovered";
    return changed ? "updated" : "refreshed";
  }

  /** Applies a suspect message. */
  applySuspect(m: SuspectMessage, now: number): UpdateOutcome {
    const rec = this.#members.get(m.node);
    this.#begin(rec);
    if (rec === undefined) return "ignored";
    const order = compareIncarnation(m.incarnation, rec.incarnation);
    if (order === "older") return "ignored";
    if (order === "implausible") return "implausible";
    if (rec.state === "dead" || rec.state === "left") return "ignored";
    if (m.node === this.localId) return "refute";
    // Only a suspicion of the same incarnation confirms the running one. A suspicion of a newer
    // incarnation (the member refuted, we missed the refutation, and it is suspected again) is a
    // new episode with a fresh timer: counting it as a confirmation would let the stale timer
    // declare the new incarnation dead moments after it was first suspected.
    if (rec.state === "suspect" && order === "equal") return "confirm";
    rec.incarnation = m.incarnation;
    this.#setState(rec, "suspect", now);
    return "suspected";
  }

  /** Applies a dead message (`leave` for a graceful departure). */
  applyDead(m: DeadMessage | LeaveMessage, now: number, leaving = false): UpdateOutcome {
    const rec = this.#members.get(m.node);
    this.#begin(rec);
    if (rec === undefined) return "ignored";
    const order = compareIncarnation(m.incarnation, rec.incarnation);
    if (order === "older") return "ignored";
    if (order === "implausible") return "implausible";
    if (rec.state === "dead" || rec.state === "left") return "ignored";
    if (m.node === this.localId) return leaving ? "ignored" : "refute";
    rec.incarnation = m.incarnation;
    if (m.type === "leave") {
      this.#setState(rec, "left", now);
      return "left";
    }
    this.#setState(rec, "dead", now);
    return "failed";
  }

  /**
   * Adds alive members in bulk, sorting the ring once (adding one by one costs O(N) each, so
   * O(N²) per table). Known ids are skipped. Used to start from a converged view.
   */
  preload(members: Iterable<MemberSeed>, now: number): number {
    let added = 0;
    for (const m of members) {
      if (this.#members.has(m.id)) continue;
      this.#ring.push(
        this.#insertAlive(m.id, m.gossipAddr, m.rpcAddr, m.incarnation, m.tags, now).id,
      );
      added++;
    }
    if (added > 0) {
      this.#ringSorted = false;
      this.version++;
      this.stateVersion++;
    }
    return added;
  }

  /** Marks the local member (e.g. left when leaving); bypasses precedence. */
  setLocalState(state: MemberState, now: number): void {
    this.#setState(this.local, state, now);
  }

  /**
   * Removes tombstones older than `maxAgeMs`. Returns the ids removed.
   */
  reap(now: number, maxAgeMs: number): string[] {
    const removed: string[] = [];
    while (this.#tombHead < this.#tombstones.length) {
      const id = this.#tombstones[this.#tombHead];
      const rec = this.#members.get(id);
      if (rec !== undefined && !rec.live && rec.id !== this.localId) {
        if (now - rec.stateChangedAt < maxAgeMs) break;
        this.#members.delete(id);
        removed.push(id);
      }
      this.#tombHead++;
    }
    if (this.#tombHead > 64 && this.#tombHead * 2 > this.#tombstones.length) {
      this.#tombstones = this.#tombstones.slice(this.#tombHead);
      this.#tombHead = 0;
    }
    return removed;
  }

  /**
   * The `k` live successors of `id` on the ring of sorted ids, wrapping around (excluding `id`).
   */
  successors(id: string, k: number): string[] {
    const ring = this.#sortedRing();
    const n = ring.length;
    const out: string[] = [];
    if (n === 0) return out;
    let i = lowerBound(ring, id);
    if (ring[i] === id) i++;
    for (let step = 0; step < n && out.length < k; step++) {
      const cand = ring[(i + step) % n];
      if (cand !== id) out.push(cand);
    }
    return out;
  }

  /**
   * Up to `k` distinct random live members other than this node and `exclude`, chosen with
   * `random` (rejection sampling, O(k) for large rings).
   */
  randomLive(k: number, random: () => number, exclude?: string): MemberRecord[] {
    // Sorted, so the same random draws pick the same members (the simulator replays seeds).
    const ring = this.#sortedRing();
    const n = ring.length;
    const out: MemberRecord[] = [];
    if (k <= 0 || n <= 1) return out;
    const eligible = n - 1 - (exclude !== undefined && exclude !== this.localId &&
        this.#members.get(exclude)?.live
      ? 1
      : 0);
    const want = Math.min(k, eligible);
    if (want <= 0) return out;
    if (want * 3 >= n) {
      // Small ring: partial Fisher-Yates over a copy.
      const ids = ring.filter((x) => x !== this.localId && x !== exclude);
      for (let i = 0; i < want; i++) {
        const j = i + Math.floor(random() * (ids.length - i));
        const t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
        out.push(this.#members.get(ids[i])!);
      }
      return out;
    }
    for (let tries = 0; out.length < want && tries < want * 20; tries++) {
      const id = ring[Math.floor(random() * n)];
      if (id === this.localId || id === exclude) continue;
      const rec = this.#members.get(id)!;
      if (!out.includes(rec)) out.push(rec);
    }
    return out;
  }
}
