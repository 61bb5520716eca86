/**
 * The state messages of SWIM: alive, suspect, dead and leave, applied to the member table with
 * their side effects (events, re-gossip, suspicions, the reconnect list) and this node's
 * refutations of rumours about itself. Suspect and dead verdicts learnt from a sync about a member
 * we hold alive are checked with a ping of our own before they count.
 *
 * @module
 */
import type { BroadcastQueue } from "./broadcast_queue.ts";
import {
  type AliveMessage,
  aliveMessage,
  type DeadMessage,
  encodeMessage,
  type LeaveMessage,
  type SuspectMessage,
} from "./codec.ts";
import { compareIncarnation, laterIncarnation, nextIncarnation } from "./incarnation.ts";
import type { MemberRecord } from "./member_table.ts";
import type { ProtocolHost } from "./protocol_host.ts";
import type { AckRegistry } from "./probe.ts";
import type { ReconnectList } from "./reconnect.ts";
import type { Suspicions } from "./suspicion.ts";
import type { ClusterEvent, Member } from "./types.ts";

/** What {@linkcode StateMessages} needs from the node beyond its {@linkcode ProtocolHost}. */
export interface StateMessagesNode {
  /** Membership broadcasts. */
  readonly queue: BroadcastQueue;
  /** Members declared dead, tried again later. */
  readonly reconnect: ReconnectList;
  /** Running suspicions. */
  readonly suspicions: Suspicions;
  /** Pending acks. */
  readonly acks: AckRegistry;
  /** The node's lifecycle state (refutations only while `running`; leaves while `leaving`). */
  state(): string;
  /** Emits a cluster event. */
  emit(e: ClusterEvent): void;
  /** The public view of a record. */
  snapshot(r: MemberRecord): Member;
  /** Phi of a monitored member (0 otherwise). */
  phi(id: string): number;
}

/** Counters of state messages. */
export interface StateMessageCounters {
  /** Members this node saw become suspect. */
  suspicions: number;
  /** Independent suspicion confirmations counted. */
  confirmations: number;
  /** Times this node refuted a suspicion or death of itself. */
  refutations: number;
  /** Alive messages naming a live member at another gossip address (dropped). */
  idConflicts: number;
  /** Messages dropped for an implausible incarnation. */
  droppedIncarnation: number;
  /** Sync verdicts checked with a ping of our own. */
  verdictChecks: number;
}

/** Applies alive, suspect, dead and leave messages. */
export class StateMessages {
  readonly #host: ProtocolHost;
  readonly #node: StateMessagesNode;
  readonly #verifying = new Set<string>();
  /** Counters. */
  readonly counters: StateMessageCounters = {
    suspicions: 0,
    confirmations: 0,
    refutations: 0,
    idConflicts: 0,
    droppedIncarnation: 0,
    verdictChecks: 0,
  };

  /** @param host the protocol host; @param node the rest of the node */
  constructor(host: ProtocolHost, node: StateMessagesNode) {
    this.#host = host;
    this.#node = node;
  }

  /** Raises this node's own suspicion of `target` (after a failed probe). */
  suspectLocally(target: MemberRecord, incarnation: number): void {
    this.suspect({ type: "suspect", node: target.id, incarnation, from: this.#host.table.localId });
  }
  /**
   * Applies an alive message. New members learnt from a push-pull merge (`merged`) are not
   * re-gossiped: each member announces itself, and re-gossiping a whole merged state would turn
   * every join into an O(N) broadcast storm at every node. Rejoins, recoveries and updates are.
   */
  alive(m: AliveMessage, merged = false): void {
    if (!this.#host.running) return;
    const outcome = this.#host.table.applyAlive(m, this.#host.clock.now());
    const rec = this.#host.table.last.record;
    switch (outcome) {
      case "ignored":
        return;
      case "implausible":
        this.counters.droppedIncarnation++;
        return;
      case "full": // counted by the table
        return;
      case "conflict":
        this.counters.idConflicts++;
        return;
      case "refute":
        this.#refute(m.incarnation);
        return;
      case "joined":
      case "rejoined":
        this.#node.reconnect.forget(m.node);
        this.#node.emit({ type: "NodeJoined", node: this.#node.snapshot(rec!) });
        break;
      case "recovered":
        this.#node.suspicions.cancel(m.node);
        this.#node.emit({ type: "NodeRecovered", node: this.#node.snapshot(rec!) });
        break;
      case "updated":
        this.#node.emit({
          type: "NodeUpdated",
          node: this.#node.snapshot(rec!),
          previousTags: this.#host.table.last.previousTags,
        });
        break;
    }
    if (merged && (outcome === "joined" || outcome === "refreshed")) return;
    this.#node.queue.queue(m.node, encodeMessage(m));
  }
  /** Applies a suspect message: a new suspicion, a confirmation, or our refutation. */
  suspect(m: SuspectMessage): void {
    if (!this.#host.running) return;
    const outcome = this.#host.table.applySuspect(m, this.#host.clock.now());
    switch (outcome) {
      case "implausible":
        this.counters.droppedIncarnation++;
        return;
      case "refute":
        if (this.#node.state() === "running") this.#refute(m.incarnation);
        return;
      case "suspected": {
        const rec = this.#host.table.last.record!;
        this.counters.suspicions++;
        this.#node.suspicions.start(rec, m.from);
        this.#node.emit({
          type: "NodeSuspect",
          node: this.#node.snapshot(rec),
          phi: this.#node.phi(rec.id),
        });
        this.#node.queue.queue(m.node, encodeMessage(m));
        return;
      }
      case "confirm": {
        if (this.#node.suspicions.confirm(m.node, m.from)) {
          this.counters.confirmations++;
          this.#node.queue.queue(m.node, encodeMessage(m));
        }
        return;
      }
    }
  }
  /** Applies a dead or leave message. */
  dead(m: DeadMessage | LeaveMessage): void {
    if (!this.#host.running) return;
    const outcome = this.#host.table.applyDead(
      m,
      this.#host.clock.now(),
      this.#node.state() === "leaving",
    );
    const rec = this.#host.table.last.record;
    switch (outcome) {
      case "implausible":
        this.counters.droppedIncarnation++;
        return;
      case "refute":
        this.#refute(m.incarnation);
        return;
      case "failed":
        this.#node.suspicions.cancel(m.node);
        this.#node.reconnect.failed(m.node, rec!.gossipAddr, this.#host.clock.now());
        this.#node.emit({ type: "NodeFailed", node: this.#node.snapshot(rec!) });
        this.#node.queue.queue(m.node, encodeMessage(m));
        return;
      case "left":
        this.#node.suspicions.cancel(m.node);
        this.#node.reconnect.forget(m.node);
        this.#node.emit({ type: "NodeLeft", node: this.#node.snapshot(rec!) });
        this.#node.queue.queue(m.node, encodeMessage(m));
        return;
    }
  }
  /** Refutes a suspicion or death of this node: a higher incarnation, announced. */
  #refute(incarnation: number): void {
    if (this.#node.state() !== "running") return;
    const local = this.#host.table.local;
    // Serial-number order: the refutation of 0xFFFFFFFF is 0, which every member sees as newer.
    local.incarnation = nextIncarnation(laterIncarnation(local.incarnation, incarnation));
    this.counters.refutations++;
    this.#host.awareness.apply(1);
    this.announce();
  }
  /** This node's own alive message. */
  localAlive(): AliveMessage {
    const l = this.#host.table.local;
    return aliveMessage(l.id, l);
  }

  /** Queues this node's alive message for gossip. */
  announce(): void {
    this.#node.queue.queue(this.#host.table.localId, encodeMessage(this.localAlive()));
  }
  /** See {@linkcode ProtocolHost.verifyVerdict}. */
  verifyVerdict(m: SuspectMessage): void {
    if (!this.#host.running) return;
    const rec = this.#host.table.get(m.node);
    if (rec === undefined || m.node === this.#host.table.localId || rec.state !== "alive") {
      return this.suspect(m);
    }
    const order = compareIncarnation(m.incarnation, rec.incarnation);
    if (order === "older") return;
    if (order === "implausible") {
      this.counters.droppedIncarnation++;
      return;
    }
    // We hold it alive, someone else (perhaps across a partition that just healed) holds it
    // suspect or dead: ask it ourselves, telling it the verdict so that it refutes, and suspect
    // it only if it does not answer. Suspecting at once would make members that were never cut
    // off suspect each other on every heal.
    if (this.#verifying.has(m.node)) return;
    this.#verifying.add(m.node);
    this.counters.verdictChecks++;
    const seq = this.#host.nextSeq();
    this.#node.acks.register(
      seq,
      this.#host.awareness.scale(this.#host.config.probeTimeoutMs),
      () => this.#verifying.delete(m.node),
      () => {
        this.#verifying.delete(m.node);
        if (this.#host.running) this.suspect(m);
      },
    );
    this.#host.send(rec.gossipAddr, [m, { type: "ping", seq, target: rec.id }], false);
  }
}
