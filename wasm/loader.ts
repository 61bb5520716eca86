/**
 * Loads `wasm/core.wasm` (embedded as base64, see `core_wasm.ts`) synchronously, once per process,
 * into one shared instance with a small allocator over its memory: every detector and balancer
 * keeps a context struct and its arrays there (one memory and one set of exported functions, so
 * call sites stay monomorphic and thousands of detectors cost no more than their arrays).
 * Internal to the package.
 *
 * @module
 */
import { RpcError } from "../src/errors.ts";
import { decodeBase64 } from "./base64.ts";
import { CORE_WASM_BASE64 } from "./core_wasm.ts";

/** The functions `core.wasm` exports (see `wasm/assembly/`). Addresses are byte offsets. */
export interface CoreExports {
  memory: WebAssembly.Memory;
  heap_base(): number;
  norm_phi(z: number): number;
  det_layout(
    ctx: number,
    window: number,
    estimate: number,
    ring: number,
    count: number,
    head: number,
    sum: number,
    sumSq: number,
    last: number,
    mean: number,
    std: number,
    minStd: number,
    pause: number,
    out: number,
    idx: number,
  ): void;
  det_open(ctx: number, slot: number, now: number, minStd: number, pause: number): void;
  det_close(ctx: number, slot: number): void;
  det_configure(ctx: number, slot: number, minStd: number, pause: number): void;
  det_heartbeat(ctx: number, slot: number, now: number, threshold: number): void;
  det_phi(ctx: number, slot: number, now: number): number;
  det_phi_all(ctx: number, now: number, n: number): void;
  det_suspects(ctx: number, now: number, n: number, threshold: number): number;
  det_estimate(ctx: number, slot: number, which: number): number;
  bal_init(
    ctx: number,
    strategy: number,
    decayMs: number,
    a: number,
    b: number,
    c: number,
    d: number,
    streak: number,
  ): void;
  bal_layout(
    ctx: number,
    active: number,
    ewma: number,
    stamp: number,
    weight: number,
    eject: number,
    hash: number,
    scratch: number,
  ): void;
  bal_forget(ctx: number): void;
  bal_open(ctx: number, slot: number, weight: number, hash: number, now: number): void;
  bal_weight(ctx: number, slot: number, weight: number): void;
  bal_start(ctx: number, slot: number): void;
  bal_finish(ctx: number, slot: number, latency: number, ok: boolean, now: number): void;
  bal_ewma(ctx: number, slot: number, now: number): number;
  bal_eject(ctx: number, slot: number, until: number): void;
  bal_select(ctx: number, set: number, now: number, hasKey: number, key: number): number;
  bal_random(ctx: number): number;
}

/** Bytes of a detector's or balancer's context struct in the core. */
export const CONTEXT_BYTES = 80;

let compiled: WebAssembly.Module | undefined;

/** The compiled module (compiled synchronously on first use; it is ~13 KB). */
export function coreModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(decodeBase64(CORE_WASM_BASE64) as Uint8Array<ArrayBuffer>);
  return compiled;
}

/** The largest linear memory the allocator will grow to (wasm32 limit is 4 GiB). */
export const MAX_MEMORY_BYTES = 2 ** 31;

/**
 * One instance of the core with a bump allocator over its memory. Freed blocks are kept on
 * per-size free lists (sizes are rounded up to powers of two, so they are reused).
 */
export class CoreInstance {
  /** The instance's exports. */
  readonly core: CoreExports;
  #top: number;
  #free = new Map<number, number[]>();
  #buffer: ArrayBufferLike;
  /** Byte view of the whole memory (kept current: only {@linkcode CoreInstance.alloc} grows it). */
  u8: Uint8Array;
  /** i32 view of the whole memory (kept current like `u8`). */
  i32: Int32Array;
  /** f64 view of the whole memory (kept current like `u8`). */
  f64: Float64Array;

  constructor() {
    const instance = new WebAssembly.Instance(coreModule(), {});
    this.core = instance.exports as unknown as CoreExports;
    this.#top = this.core.heap_base();
    this.#buffer = this.core.memory.buffer;
    this.u8 = new Uint8Array(this.#buffer);
    this.i32 = new Int32Array(this.#buffer);
    this.f64 = new Float64Array(this.#buffer);
  }

  /** Allocates `bytes` (16-aligned); throws `RpcError("resource_exhausted")` past the limit. */
  alloc(bytes: number): number {
    const size = blockSize(bytes);
    const reuse = this.#free.get(size);
    if (reuse?.length) return reuse.pop()!;
    const at = this.#top;
    const end = at + size;
    if (end > MAX_MEMORY_BYTES) {
      throw new RpcError(
        "resource_exhausted",
        `wasm core memory limit reached (${MAX_MEMORY_BYTES} bytes): too many members or candidates`,
      );
    }
    const have = this.core.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((Math.max(end, have * 1.5) - have) / 65536);
      try {
        this.core.memory.grow(pages);
      } catch (cause) {
        throw new RpcError("resource_exhausted", "could not grow wasm core memory", { cause });
      }
      // Only this allocator grows the memory, so the views stay valid until the next growth.
      this.sync();
    }
    this.#top = end;
    return at;
  }

  /** Returns a block from {@linkcode CoreInstance.alloc} (same `bytes`) for reuse. */
  free(at: number, bytes: number): void {
    const size = blockSize(bytes);
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(at);
  }

  /** Current size of the linear memory in bytes. */
  memoryBytes(): number {
    return this.core.memory.buffer.byteLength;
  }

  /** Copies `bytes` from `from` to `to` inside the memory. */
  copy(to: number, from: number, bytes: number): void {
    this.sync();
    this.u8.copyWithin(to, from, from + bytes);
  }

  /** Recreates the typed-array views if the memory has grown (growth detaches the old buffer). */
  sync(): void {
    const buffer = this.core.memory.buffer;
    if (buffer !== this.#buffer) {
      this.#buffer = buffer;
      this.u8 = new Uint8Array(buffer);
      this.i32 = new Int32Array(buffer);
      this.f64 = new Float64Array(buffer);
    }
  }
}

function blockSize(bytes: number): number {
  if (bytes > 65536) return Math.ceil(bytes / 65536) * 65536;
  let size = 16;
  while (size < bytes) size *= 2;
  return size;
}

let shared: CoreInstance | undefined;

/** The process-wide instance every detector and balancer allocates from. */
export function sharedCore(): CoreInstance {
  shared ??= new CoreInstance();
  return shared;
}

/** A block of core memory: address and requested size. */
export type Block = [ptr: number, bytes: number];

/** Frees blocks of facades that were garbage-collected (held value: their live block list). */
export const blockRegistry: FinalizationRegistry<{ blocks: Block[]; onFree?: () => void }> =
  new FinalizationRegistry((held) => {
    const core = sharedCore();
    held.onFree?.();
    for (const [ptr, bytes] of held.blocks) core.free(ptr, bytes);
    held.blocks.length = 0;
  });
