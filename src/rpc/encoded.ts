/**
 * `EncodedPayload`: a call payload kept in its wire encoding, so that a proxy can pass requests
 * and responses through without decoding and re-encoding them.
 *
 * @module
 */

import { RpcError } from "../errors.ts";
import { MsgpackDecoder } from "./msgpack.ts";
import { PayloadLimits } from "./payload_limits.ts";

const decoder = new MsgpackDecoder();
const limits = new PayloadLimits();

/**
 * A payload exactly as it travels on the wire: MessagePack bytes, or the raw bytes of a
 * `Uint8Array` value. Sending one (as a request, or returning it from a handler) puts its bytes
 * on the wire as they are; the peer decodes them as if the original value had been sent.
 *
 * The {@linkcode RpcServer.registerFallback} handler receives requests in this form when
 * registered with `{ encoded: true }`, and a call made with `{ encoded: true }` resolves with the
 * response in this form. Together they let a proxy such as the `Director` forward calls it knows
 * nothing about.
 *
 * @example
 * ```ts
 * import { EncodedPayload, RpcClient, RpcServer } from "@rpcnet/cluster";
 *
 * const server = new RpcServer().register("echo", (req) => req);
 * await server.start();
 * const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * const res = await client.call<EncodedPayload>("echo", { n: 1 }, { encoded: true });
 * console.log(res.bytes.length, res.decode()); // 4 { n: 1 }
 * await client.close();
 * await server.close();
 * ```
 */
export class EncodedPayload {
  /** The payload bytes as on the wire (empty for an `undefined` value). */
  readonly bytes: Uint8Array;
  /** True when `bytes` are a `Uint8Array` value's own bytes; false for MessagePack. */
  readonly isRawBytes: boolean;

  /**
   * Wraps already-encoded bytes. The bytes are sent as they are: they must stay unchanged
   * until the call (or response) has been written.
   *
   * @param bytes MessagePack bytes, or raw bytes when `isRawBytes`
   * @param isRawBytes whether the peer should receive the bytes as a `Uint8Array` value
   */
  constructor(bytes: Uint8Array, isRawBytes = false) {
    this.bytes = bytes;
    this.isRawBytes = isRawBytes;
  }

  /**
   * The value the payload encodes.
   *
   * @throws {RpcError} `invalid_argument` when the bytes are not valid MessagePack or break the
   * default payload limits (see `RpcServerOptions.maxPayloadDepth`)
   */
  decode(): unknown {
    if (this.isRawBytes) return this.bytes;
    if (this.bytes.length === 0) return undefined;
    limits.check(this.bytes);
    try {
      return decoder.decode(this.bytes);
    } catch (e) {
      throw new RpcError("invalid_argument", `payload not decodable: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
}
