/**
 * Trace context: W3C `traceparent` in call metadata, and spans through the OpenTelemetry API.
 *
 * The server interceptor continues the caller's trace (or starts one), opens a server span and
 * replaces `ctx.meta.traceparent` with that span's id, so a handler that passes its `ctx.meta`
 * on (as `Director` does) makes the next hop a child of this one. The client interceptor opens
 * a client span under the call's `meta.traceparent` (or the active OpenTelemetry span) and
 * sends its own id. Without an OpenTelemetry SDK the spans are no-ops, and span ids are made
 * here, so the `traceparent` chain is still propagated and can be logged.
 *
 * @module
 */

import {
  context,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import { RpcError } from "../errors.ts";
import type { ServerInterceptor } from "../rpc/intercept.ts";
import type { ClientInterceptor } from "../client/intercept.ts";
import { OTEL_SCOPE } from "./otel.ts";

/** A parsed W3C trace context. */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex digits, not all zero: the caller's span. */
  readonly spanId: string;
  /** Trace flags (bit 0: sampled). */
  readonly flags: number;
}

const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Parses a `traceparent` header value; `undefined` when it is missing or invalid (version
 * `ff`, all-zero ids, wrong lengths), as the W3C spec says to ignore those.
 */
export function parseTraceparent(value: string | undefined): TraceParent | undefined {
  if (typeof value !== "string" || value.length > 512) return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, tail] = m;
  if (version === "ff" || (version === "00" && tail !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

/** Formats a `traceparent` value (version 00). */
export function formatTraceparent(tp: TraceParent): string {
  return `00-${tp.traceId}-${tp.spanId}-${(tp.flags & 0xff).toString(16).padStart(2, "0")}`;
}

// Span and trace ids come from a pool of random words refilled 1 KiB at a time: one
// getRandomValues call (~2 µs) per 64 spans instead of one or two per span.
const pool = new Uint32Array(256);
let poolAt = pool.length;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function randomWord(): number {
  if (poolAt >= pool.length) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  return pool[poolAt++];
}

function hexWord(w: number): string {
  return HEX[w >>> 24] + HEX[(w >>> 16) & 255] + HEX[(w >>> 8) & 255] + HEX[w & 255];
}

/** `words` random 32-bit words as lowercase hex, never all zero (invalid in W3C trace context). */
function randomHex(words: number): string {
  for (;;) {
    let s = "";
    let any = 0;
    for (let i = 0; i < words; i++) {
      const w = randomWord();
      any |= w;
      s += hexWord(w);
    }
    if (any !== 0) return s;
  }
}

/** Options of the tracing interceptors. */
export interface TracingOptions {
  /**
   * An OpenTelemetry `Tracer` spans are made with (default: the global tracer provider's
   * `@rpcnet/cluster` tracer).
   */
  tracer?: object;
}

// The API's no-op provider: what a fresh proxy delegates to while no SDK is registered.
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Whether spans made through the global tracer provider would be no-ops: no SDK registered
 * (the global provider is the API's proxy with nothing behind it). Then the interceptors only
 * propagate ids and skip span objects, attribute records and context switches. Checked per call
 * (a global read and two compares) so an SDK registered later is picked up.
 */
function noSdk(): boolean {
  const p = trace.getTracerProvider();
  return p instanceof ProxyTracerProvider && p.getDelegate() === NOOP_PROVIDER;
}

/** `traceparent` of a new hop: the parent's trace (or a new one) and a new span id. */
function childTraceparent(parent: TraceParent | undefined): string {
  if (parent === undefined) {
    // An active span context set by hand (a context manager without an SDK) is the parent.
    const sc = trace.getSpanContext(context.active());
    if (sc !== undefined && trace.isSpanContextValid(sc)) {
      return `00-${sc.traceId}-${randomHex(2)}-${HEX[sc.traceFlags & 0xff]}`;
    }
    return `00-${randomHex(4)}-${randomHex(2)}-01`;
  }
  return `00-${parent.traceId}-${randomHex(2)}-${HEX[parent.flags & 0xff]}`;
}

interface Started {
  span: Span;
  /** The id this hop passes on. */
  own: TraceParent;
}

function startSpan(
  tracer: Tracer,
  name: string,
  kind: SpanKind,
  parent: TraceParent | undefined,
  attributes: Record<string, string>,
): Started {
  const parentCtx = parent
    ? trace.setSpanContext(ROOT_CONTEXT, {
      traceId: parent.traceId,
      spanId: parent.spanId,
      traceFlags: parent.flags,
      isRemote: true,
    })
    : context.active();
  const span = tracer.startSpan(name, { kind, attributes }, parentCtx);
  const sc: SpanContext = span.spanContext();
  if (span.isRecording() && trace.isSpanContextValid(sc)) {
    return { span, own: { traceId: sc.traceId, spanId: sc.spanId, flags: sc.traceFlags } };
  }
  // No SDK: a no-op span. Keep propagating with ids of our own.
  const active = parent ??
    (trace.isSpanContextValid(sc)
      ? { traceId: sc.traceId, spanId: sc.spanId, flags: sc.traceFlags }
      : undefined);
  return {
    span,
    own: {
      traceId: active?.traceId ?? randomHex(4),
      spanId: randomHex(2),
      flags: active?.flags ?? 1,
    },
  };
}

function endSpan(span: Span, e: unknown): void {
  if (e !== undefined) {
    const code = e instanceof RpcError ? e.code : "internal";
    span.setAttribute("rpc.rpcnet.code", code);
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: e instanceof Error ? e.message : String(e),
    });
  } else {
    span.setAttribute("rpc.rpcnet.code", "ok");
  }
  span.end();
}

/**
 * A server interceptor that continues the caller's trace: a server span per call, and
 * `ctx.meta.traceparent` set to it for calls the handler makes with `ctx.meta`.
 */
export function serverTracing(options: TracingOptions = {}): ServerInterceptor {
  const given = options.tracer as Tracer | undefined;
  const tracer = given ?? trace.getTracer(OTEL_SCOPE);
  return (call, next) => {
    const ctx = call.ctx;
    if (given === undefined && noSdk()) {
      (ctx as { meta: Record<string, string> }).meta = {
        ...ctx.meta,
        traceparent: childTraceparent(parseTraceparent(ctx.meta.traceparent)),
      };
      return next(call);
    }
    const { span, own } = startSpan(
      tracer,
      `rpcnet.server/${call.method}`,
      SpanKind.SERVER,
      parseTraceparent(ctx.meta.traceparent),
      { "rpc.system": "rpcnet", "rpc.method": call.method, "net.peer.name": ctx.remoteAddr },
    );
    (ctx as { meta: Record<string, string> }).meta = {
      ...ctx.meta,
      traceparent: formatTraceparent(own),
    };
    let r: unknown;
    try {
      r = context.with(trace.setSpan(context.active(), span), () => next(call));
    } catch (e) {
      endSpan(span, e);
      throw e;
    }
    return Promise.resolve(r).then((v) => {
      endSpan(span, undefined);
      return v;
    }, (e) => {
      endSpan(span, e);
      throw e;
    });
  };
}

/**
 * A client interceptor that sends a `traceparent` with every `callWorker`: a child of the
 * call's own `meta.traceparent` (an incoming call's, through `Director`) or of the active
 * OpenTelemetry span, else a new trace.
 */
export function clientTracing(options: TracingOptions = {}): ClientInterceptor {
  const given = options.tracer as Tracer | undefined;
  const tracer = given ?? trace.getTracer(OTEL_SCOPE);
  return (call, next) => {
    const meta = call.options.meta;
    if (given === undefined && noSdk()) {
      const traceparent = childTraceparent(parseTraceparent(meta?.traceparent));
      call.options = { ...call.options, meta: { ...meta, traceparent } };
      return next(call);
    }
    const { span, own } = startSpan(
      tracer,
      `rpcnet.client/${call.method}`,
      SpanKind.CLIENT,
      parseTraceparent(meta?.traceparent),
      { "rpc.system": "rpcnet", "rpc.method": call.method },
    );
    call.options = { ...call.options, meta: { ...meta, traceparent: formatTraceparent(own) } };
    return next(call).then((v) => {
      endSpan(span, undefined);
      return v;
    }, (e) => {
      endSpan(span, e);
      throw e;
    });
  };
}
