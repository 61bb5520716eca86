/**
 * Logs what membership otherwise only counts or emits: member state changes (from its events),
 * dropped datagrams (from its counters, summed per interval, so a flood costs one line per
 * interval and nothing on the receive path), and join failures, retries and reconnects (from its
 * join status and counters, on the same interval).
 *
 * @module
 */

import type { Logger } from "../logger.ts";
import type { ClusterMembership, MembershipStats } from "../membership/membership.ts";
import type { ClusterEvent, ClusterEventType } from "../membership/types.ts";

const EVENTS: readonly ClusterEventType[] = [
  "NodeJoined",
  "NodeLeft",
  "NodeFailed",
  "NodeSuspect",
  "NodeRecovered",
  "NodeUpdated",
  "PartitionDetected",
  "PartitionHealed",
];

const DROPS: readonly [keyof MembershipStats, string][] = [
  ["droppedDecode", "decode"],
  ["droppedAuth", "auth"],
  ["droppedLabel", "label"],
  ["droppedVersion", "version"],
  ["droppedMisdirected", "misdirected"],
  ["handlerErrors", "handler_error"],
  ["pushPullFailures", "push_pull_failed"],
];

/** Options of {@linkcode logMembership}. */
export interface MembershipLogOptions {
  /**
   * How often dropped-datagram counters are summed into one warning, and the join status and
   * reconnects are checked. Default 10 000 ms.
   */
  intervalMs?: number;
}

/**
 * Logs membership events (joins, leaves and recoveries at info, suspicions at info, failures
 * and partitions at warn) and, every `intervalMs`, one warning with the datagrams dropped
 * since the last one, by reason; a warning while joining fails (`join attempts failed`, with the
 * attempts so far and the last error), `joined cluster` at info once it succeeds, and
 * `reconnected to failed members` at info when a reconnect round merged a healed partition.
 *
 * @returns a function that stops logging
 */
export function logMembership(
  membership: ClusterMembership,
  logger: Logger,
  options: MembershipLogOptions = {},
): () => void {
  const onEvent = (e: CustomEvent<ClusterEvent>): void => {
    const ev = e.detail;
    switch (ev.type) {
      case "NodeFailed":
        return logger.warn("member failed", fieldsOf(ev.node));
      case "NodeSuspect":
        return logger.info("member suspect", { ...fieldsOf(ev.node), phi: ev.phi });
      case "NodeJoined":
        return logger.info("member joined", fieldsOf(ev.node));
      case "NodeLeft":
        return logger.info("member left", fieldsOf(ev.node));
      case "NodeRecovered":
        return logger.info("member recovered", fieldsOf(ev.node));
      case "NodeUpdated":
        return logger.debug("member updated", fieldsOf(ev.node));
      case "PartitionDetected":
        return logger.warn("partition detected", {
          reachable: ev.reachable.length,
          unreachable: ev.unreachable.join(","),
        });
      case "PartitionHealed":
        return logger.info("partition healed", { members: ev.members.length });
    }
  };
  for (const t of EVENTS) membership.addEventListener(t, onEvent);
  let last = membership.stats();
  let lastJoin = membership.joinStatus();
  const timer = setInterval(() => {
    if (!membership.running) return;
    const join = membership.joinStatus();
    if (join.state === "joined" && lastJoin.state !== "joined") {
      logger.info("joined cluster", { attempts: join.attempts });
    } else if (join.attempts > lastJoin.attempts && join.state !== "joined") {
      logger.warn("join attempts failed", {
        state: join.state,
        attempts: join.attempts,
        error: join.lastError ?? "",
      });
    }
    lastJoin = join;
    const now = membership.stats();
    if (now.reconnects > last.reconnects) {
      logger.info("reconnected to failed members", {
        reconnects: now.reconnects - last.reconnects,
      });
    }
    const fields: Record<string, number> = {};
    let any = false;
    for (const [key, reason] of DROPS) {
      const d = (now[key] as number) - (last[key] as number);
      if (d > 0) {
        fields[reason] = d;
        any = true;
      }
    }
    last = now;
    if (any) logger.warn("gossip datagrams dropped or failed", fields);
  }, options.intervalMs ?? 10_000);
  Deno.unrefTimer(timer);
  return () => {
    clearInterval(timer);
    for (const t of EVENTS) membership.removeEventListener(t, onEvent);
  };
}

function fieldsOf(m: { id: string; gossipAddr: string; rpcAddr: string; incarnation: number }) {
  return { member: m.id, gossip: m.gossipAddr, rpc: m.rpcAddr, incarnation: m.incarnation };
}
