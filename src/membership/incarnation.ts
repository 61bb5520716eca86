/**
 * Incarnation numbers compared as 32-bit serial numbers (RFC 1982), so they never overflow.
 *
 * Why serial numbers rather than rejecting or saturating at 2^32 − 1: anyone who can send gossip
 * (no keyring) can suspect a member at any incarnation, and the member must always be able to
 * refute with a higher one. Saturating would leave a member suspected at 0xFFFFFFFF unable to
 * refute, so it would be declared dead everywhere; rejecting the top values would only move that
 * ceiling. With serial arithmetic the refutation of 0xFFFFFFFF is 0, and 0 is newer than
 * 0xFFFFFFFF.
 *
 * The one weakness of serial numbers is the half-way point: two values 2^31 apart are neither
 * newer nor older. A member only ever raises its own incarnation by one step at a time, so a
 * genuine record is never far ahead of the one we hold; a message claiming an incarnation
 * {@linkcode MAX_INCARNATION_JUMP} (2^30) or more ahead is implausible and dropped (counted as
 * `droppedIncarnation`). A forger can therefore move a member's incarnation by less than 2^30
 * per message, and the refutation one step above it is ordered the same way by every member.
 * The residual edge: a member that missed a forged message of exactly 2^30 − 1 steps sees the
 * refutation as implausible and keeps its older record (the member stays alive there; at worst
 * that one member's own probes later fail it, and it relearns it after the tombstone is reaped).
 *
 * @module
 */

/** Largest forward step from the incarnation held to one accepted from the network: 2^30. */
export const MAX_INCARNATION_JUMP = 2 ** 30;

/** How a received incarnation relates to the one held. */
export type IncarnationOrder = "older" | "equal" | "newer" | "implausible";

/**
 * Orders `received` against `held` in serial-number arithmetic: `newer` when it is 1 to 2^30 − 1
 * steps ahead (mod 2^32), `implausible` when 2^30 to 2^31 − 1 ahead, `older` otherwise.
 */
export function compareIncarnation(received: number, held: number): IncarnationOrder {
  const ahead = (received - held) >>> 0;
  if (ahead === 0) return "equal";
  if (ahead < MAX_INCARNATION_JUMP) return "newer";
  if (ahead < 2 ** 31) return "implausible";
  return "older";
}

/** The incarnation after `n`: `n + 1`, wrapping from 2^32 − 1 to 0. */
export function nextIncarnation(n: number): number {
  return (n + 1) >>> 0;
}

/** The serial-number maximum of two incarnations (`a` unless `b` is newer). */
export function laterIncarnation(a: number, b: number): number {
  return compareIncarnation(b, a) === "newer" ? b : a;
}
