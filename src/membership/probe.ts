/**
 * SWIM failure detection by probing: a round-robin walk over a shuffled member list, a direct
 * ping, then indirect pings through `k` random members (ping-req) that answer with a nack when the
 * target stays silent, so the prober can tell "it is down" from "I am slow" (Lifeguard). A failed
 * probe raises a suspicion; the local health score moves with every outcome.
 *
 * @module
 */
import {
  type AckMessage,
  aliveMessage,
  ByteWriter,
  decodeBody,
  type GossipMessage,
  type NackMessage,
  type PingMessage,
  type PingReqMessage,
  type SuspectMessage,
  writeMessage,
} from "./codec.ts";
import type { ProtocolHost } from "./protocol_host.ts";
import type { MemberRecord } from "./member_table.ts";

/**
 * Pings `target` (naming it when `named`; a named ping also piggybacks broadcasts). A suspect
 * target also gets its suspicion, so it can refute at once (Lifeguard's buddy system).
 */
export function sendPing(
  host: ProtocolHost,
  target: MemberRecord,
  seq: number,
  named: boolean,
): void {
  const ping: GossipMessage = { type: "ping", seq, target: named ? target.id : "" };
  if (host.config.lifeguard && target.state === "suspect") {
    const suspect: SuspectMessage = {
      type: "suspect",
      node: target.id,
      incarnation: target.incarnation,
      from: host.table.localId,
    };
    host.send(target.gossipAddr, [suspect, ping], named);
  } else host.send(target.gossipAddr, [ping], named);
}

interface AckHandler {
  onAck: () => void;
  onNack: (() => void) | undefined;
  onTimeout: () => void;
  timer: number;
}

/** Pending acks by sequence number, each with a deadline. */
export class AckRegistry {
  readonly #host: ProtocolHost;
  readonly #handlers = new Map<number, AckHandler>();

  /** @param host the protocol host (for its clock) */
  constructor(host: ProtocolHost) {
    this.#host = host;
  }

  /** Waits for an ack of `seq` for `timeoutMs`. */
  register(
    seq: number,
    timeoutMs: number,
    onAck: () => void,
    onTimeout: () => void,
    onNack?: () => void,
  ): void {
    const timer = this.#host.clock.setTimeout(() => {
      this.#handlers.delete(seq);
      onTimeout();
    }, timeoutMs);
    this.#handlers.set(seq, { onAck, onNack, onTimeout, timer });
  }

  /** An ack arrived: returns whether anyone waited for it. */
  ack(seq: number): boolean {
    const h = this.#handlers.get(seq);
    if (h === undefined) return false;
    this.#handlers.delete(seq);
    this.#host.clock.clearTimeout(h.timer);
    h.onAck();
    return true;
  }

  /** A nack arrived. */
  nack(seq: number): boolean {
    const h = this.#handlers.get(seq);
    if (h === undefined || h.onNack === undefined) return false;
    h.onNack();
    return true;
  }

  /** Cancels everything (shutdown). */
  clear(): void {
    for (const h of this.#handlers.values()) this.#host.clock.clearTimeout(h.timer);
    this.#handlers.clear();
  }
}

/** Counters of probing. */
export interface ProbeCounters {
  /** Probes started. */
  probes: number;
  /** Probes that needed indirect pings. */
  indirectProbes: number;
  /** Probes that failed (target suspected). */
  probeFailures: number;
  /** Ping-reqs served for others. */
  pingReqsServed: number;
  /** Nacks received. */
  nacksReceived: number;
  /** Fallback pings over the reliable channel. */
  reliablePings: number;
  /** Pings for another member id (a reused address) ignored. */
  droppedMisdirected: number;
}

/** Probes members: direct ping, indirect ping-req, nack accounting, suspicion on failure. */
export class Prober {
  readonly #host: ProtocolHost;
  readonly #acks: AckRegistry;
  #order: string[] = [];
  #index = 0;
  /** Counters. */
  readonly counters: ProbeCounters = {
    probes: 0,
    indirectProbes: 0,
    probeFailures: 0,
    pingReqsServed: 0,
    nacksReceived: 0,
    reliablePings: 0,
    droppedMisdirected: 0,
  };

  /** @param host protocol host; @param acks the shared ack registry */
  constructor(host: ProtocolHost, acks: AckRegistry) {
    this.#host = host;
    this.#acks = acks;
  }

  /**
   * The next member of the round-robin walk: every live member once per round, in a fresh random
   * order each round (SWIM's bounded detection time).
   */
  nextTarget(): MemberRecord | undefined {
    const { table, random } = this.#host;
    for (let attempts = 0; attempts < 2; attempts++) {
      while (this.#index < this.#order.length) {
        const id = this.#order[this.#index++];
        const rec = table.get(id);
        if (rec !== undefined && rec.live && id !== table.localId) return rec;
      }
      const ring = table.ring;
      const order: string[] = [];
      for (const id of ring) if (id !== table.localId) order.push(id);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      this.#order = order;
      this.#index = 0;
      if (order.length === 0) return undefined;
    }
    return undefined;
  }

  /**
   * Probes `target` and calls `done(ok)`; on failure the target is suspected. The probe lasts at
   * most the (health-scaled) probe interval.
   */
  probe(target: MemberRecord, done?: (ok: boolean) => void): void {
    const host = this.#host;
    const { config, clock, awareness } = host;
    const seq = host.nextSeq();
    const incarnation = target.incarnation;
    const deadline = awareness.scale(config.probeIntervalMs);
    let finished = false;
    let nacks = 0;
    let expectedNacks = 0;
    let indirectTimer: number | undefined;
    this.counters.probes++;
    const finish = (ok: boolean) => {
      if (finished) return;
      finished = true;
      if (indirectTimer !== undefined) clock.clearTimeout(indirectTimer);
      if (ok) awareness.apply(-1);
      else {
        this.counters.probeFailures++;
        awareness.apply(expectedNacks > 0 ? Math.max(0, expectedNacks - nacks) : 1);
        if (host.running) host.suspectLocally(target, incarnation);
      }
      done?.(ok);
    };
    this.#acks.register(seq, deadline, () => finish(true), () => finish(false), () => {
      nacks++;
      this.counters.nacksReceived++;
    });
    sendPing(host, target, seq, true);
    indirectTimer = clock.setTimeout(() => {
      indirectTimer = undefined;
      if (finished || !host.running) return;
      this.counters.indirectProbes++;
      expectedNacks = this.#askHelpers(target, seq, true);
      // Fallback over the reliable channel: a lossy datagram path is not a dead member.
      const remaining = deadline - Math.min(config.probeTimeoutMs, deadline);
      if (config.reliableProbeFallback && remaining > 0) {
        this.counters.reliablePings++;
        this.#reliablePing(target, remaining).then((ok) => {
          if (ok && !finished) this.#acks.ack(seq);
        });
      }
    }, Math.min(config.probeTimeoutMs, deadline));
  }

  /**
   * Lifeguard's last chance for a suspect whose suspicion expired (buddy system): one direct ping
   * carrying the suspicion, and ping-reqs with the same seq to `indirectChecks` peers, which
   * answer with their own alive record of the suspect. A live member's answer, or a refutation we
   * missed, reaches us even if the suspect is paused right now; `onAnswered` then, `onSilence`
   * when nothing came within the (health-scaled) probe timeout.
   */
  lastChance(target: MemberRecord, onAnswered: () => void, onSilence: () => void): void {
    const host = this.#host;
    const seq = host.nextSeq();
    this.#acks.register(
      seq,
      host.awareness.scale(host.config.probeTimeoutMs),
      onAnswered,
      onSilence,
    );
    sendPing(host, target, seq, true);
    this.#askHelpers(target, seq, false);
  }

  /** Sends a ping-req for `target` to random live members; returns how many were asked. */
  #askHelpers(target: MemberRecord, seq: number, nack: boolean): number {
    const host = this.#host;
    const helpers = host.table.randomLive(host.config.indirectChecks, host.random, target.id);
    const req: PingReqMessage = {
      type: "ping-req",
      seq,
      target: target.id,
      targetAddr: target.gossipAddr,
      nack,
    };
    for (const h of helpers) host.send(h.gossipAddr, [req]);
    return helpers.length;
  }

  /**
   * Pings `target` over the transport's reliable channel (memberlist's TCP fallback probe):
   * resolves true when it answered within `timeoutMs`, false otherwise (never rejects). An
   * alive record in the reply is applied (it may carry a refutation).
   */
  async #reliablePing(target: MemberRecord, timeoutMs: number): Promise<boolean> {
    const host = this.#host;
    try {
      const w = new ByteWriter(64);
      const seq = host.nextSeq();
      writeMessage(w, { type: "ping", seq, target: target.id });
      const reply = await host.request(target.gossipAddr, await host.wrap(w.toBytes()), timeoutMs);
      const body = await host.unwrap(reply);
      const decoded = body === undefined ? undefined : decodeBody(body);
      if (decoded === undefined || !host.running) return false;
      let acked = false;
      for (const m of decoded.messages) {
        if (m.type === "alive") host.handleAlive(m);
        else if (m.type === "ack" && m.seq === seq) acked = true;
      }
      return acked;
    } catch {
      return false;
    }
  }

  /** Handles a probing message from `from`: answers pings, settles acks and nacks, serves ping-reqs. */
  receive(m: PingMessage | AckMessage | NackMessage | PingReqMessage, from: string): void {
    switch (m.type) {
      case "ping":
        if (m.target !== "" && m.target !== this.#host.table.localId) {
          this.counters.droppedMisdirected++;
          return;
        }
        this.#host.send(from, [{ type: "ack", seq: m.seq }], m.target !== "");
        return;
      case "ack":
        this.#acks.ack(m.seq);
        return;
      case "nack":
        this.#acks.nack(m.seq);
        return;
      case "ping-req":
        this.handlePingReq(m, from);
    }
  }

  /** Serves a ping-req: pings the target and forwards its ack, or a nack after the timeout. */
  handlePingReq(m: PingReqMessage, from: string): void {
    const host = this.#host;
    this.counters.pingReqsServed++;
    const seq = host.nextSeq();
    const ackSeq = m.seq;
    this.#acks.register(
      seq,
      host.config.probeTimeoutMs,
      () => host.send(from, [{ type: "ack", seq: ackSeq }]),
      () => {
        if (m.nack && host.running) host.send(from, [{ type: "nack", seq: ackSeq }]);
      },
    );
    const rec = host.table.get(m.target);
    // Lifeguard: also tell the requester our alive record of the target; if it is newer than the
    // requester's (a refutation it missed), its suspicion ends even if the target is paused now.
    if (host.config.lifeguard && rec !== undefined && rec.state === "alive") {
      host.send(from, [aliveMessage(rec.id, rec)]);
    }
    // A target that left gracefully answers nothing any more; a requester that missed its leave
    // would declare it failed. Tell it the target left instead.
    if (rec !== undefined && rec.state === "left") {
      host.send(from, [{ type: "leave", node: rec.id, incarnation: rec.incarnation }]);
      return;
    }
    if (rec !== undefined && rec.gossipAddr === m.targetAddr) sendPing(host, rec, seq, true);
    else host.send(m.targetAddr, [{ type: "ping", seq, target: m.target }]);
  }
}
