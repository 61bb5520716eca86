/**
 * What the SWIM protocol needs from the world: a clock with timers and a datagram/stream network.
 * The same protocol code runs over real UDP + QUIC (`udp_transport.ts`) and over the simulator's
 * in-memory network with virtual time (`sim/`).
 *
 * @module
 */

/** Time source and timers. Real: `Date.now`/`setTimeout`; simulated: a virtual clock. */
export interface Clock {
  /** Milliseconds (may be fractional, monotonic within one clock). */
  now(): number;
  /** Runs `fn` after `ms` milliseconds; returns a handle for {@linkcode Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): number;
  /** Cancels a timer started with {@linkcode Clock.setTimeout}. */
  clearTimeout(handle: number): void;
}

/** Receives one datagram: the bytes and the sender's `host:port`. Must not throw. */
export type PacketHandler = (data: Uint8Array, from: string) => void;

/** Handles one reliable request/response exchange (push-pull sync, join): returns the reply. */
export type StreamHandler = (request: Uint8Array, from: string) => Promise<Uint8Array>;

/**
 * An unreliable datagram network plus a reliable request/response channel, addressed by
 * `host:port` strings.
 */
export interface Transport {
  /** The local address other members should use to reach this node (`host:port`). */
  readonly localAddr: string;
  /** Largest datagram this transport sends (1400 bytes for UDP). */
  readonly maxPacketSize: number;
  /** Sends one datagram; never throws for network errors (datagrams may be lost anyway). */
  sendPacket(to: string, data: Uint8Array): void;
  /** Installs the single handler for incoming datagrams. */
  onPacket(handler: PacketHandler): void;
  /**
   * Sends `request` reliably and resolves with the peer's reply, or rejects with an
   * `RpcError("unavailable" | "deadline_exceeded")` within `timeoutMs`.
   */
  request(to: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Installs the single handler for incoming reliable requests. */
  onRequest(handler: StreamHandler): void;
  /** Releases sockets; further sends are dropped. */
  close(): Promise<void>;
}
