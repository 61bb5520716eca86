/**
 * {@linkcode ProtocolHost}: what the protocol's mechanisms (probe, monitors, push-pull,
 * suspicions) need from the node that hosts them. {@linkcode ClusterMembership} implements it; keeping it narrow keeps each mechanism
 * in its own file and testable.
 *
 * @module
 */
import type { RpcError } from "../errors.ts";
import type { Awareness } from "./awareness.ts";
import type {
  AliveMessage,
  DeadMessage,
  GossipMessage,
  LeaveMessage,
  SuspectMessage,
} from "./codec.ts";
import type { ResolvedConfig } from "./config.ts";
import type { MemberRecord, MemberTable } from "./member_table.ts";
import type { Clock } from "./transport.ts";

/** The host of the protocol mechanisms. */
export interface ProtocolHost {
  /** Resolved configuration. */
  readonly config: ResolvedConfig;
  /** Time source. */
  readonly clock: Clock;
  /** Random source in [0, 1). */
  readonly random: () => number;
  /** The member table. */
  readonly table: MemberTable;
  /** Lifeguard local health. */
  readonly awareness: Awareness;
  /** A fresh ping sequence number. */
  nextSeq(): number;
  /**
   * Sends `messages` to `addr` in one datagram, filling the rest with piggybacked broadcasts
   * unless `piggyback` is false.
   */
  send(addr: string, messages: readonly GossipMessage[], piggyback?: boolean): void;
  /** Raises a local suspicion of `target` (after a failed probe). */
  suspectLocally(target: MemberRecord, incarnation: number): void;
  /**
   * Applies an alive message with all its side effects (events, re-gossip, refutation);
   * `merged` when it comes from a push-pull state.
   */
  handleAlive(m: AliveMessage, merged?: boolean): void;
  /** Applies a dead or leave message with all its side effects. */
  handleDead(m: DeadMessage | LeaveMessage): void;
  /** Adds the header and seals `body` (when a keyring is set) for the reliable channel. */
  wrap(body: Uint8Array): Promise<Uint8Array>;
  /** Checks the header and opens a sealed payload; `undefined` (counted) when refused. */
  unwrap(packet: Uint8Array): Promise<Uint8Array | undefined>;
  /**
   * One request over the transport's reliable channel (a stream); rejects with `unavailable`
   * before start and after shutdown.
   */
  request(addr: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Whether the node is still running. */
  readonly running: boolean;
  /**
   * Handles a suspect or dead verdict learnt from a sync: refuted when it is about us; when we
   * hold the member alive, pinged (carrying the verdict, so it refutes) and suspected only if
   * it does not answer; otherwise applied as a suspicion.
   */
  verifyVerdict(m: SuspectMessage): void;
  /** Resolves on a later turn of the event loop (at once when the node shuts down). */
  yieldNow(): Promise<void>;
  /** The error to report for a packet `unwrap` refused: what differs (label, keys, protocol). */
  refusal(packet: Uint8Array, what: string): RpcError;
}
