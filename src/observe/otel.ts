/**
 * OpenTelemetry metrics through `@opentelemetry/api`: every family of `collect.ts` becomes an
 * observable instrument read at export time (a counter stays a plain field on the hot path),
 * and call latencies feed two histograms. Without an SDK (the API's no-op meter) nothing is
 * exported and the callbacks never run; with Deno's built-in one (`OTEL_DENO=true`) they are
 * exported over OTLP with no user code.
 *
 * @module
 */

import { type Attributes, type Meter, metrics } from "@opentelemetry/api";
import { type CallMetrics, LATENCY_BUCKETS_S, OUTCOME_CODES } from "./call_metrics.ts";
import { collectMetrics, type MetricSources } from "./collect.ts";

/** The instrumentation scope name of this package's instruments. */
export const OTEL_SCOPE = "@rpcnet/cluster";

/** Stops exporting (removes the callback and the latency hooks). */
export type Unregister = () => void;

function histogramOf(meter: Meter, side: "server" | "client", calls: CallMetrics): void {
  const hist = meter.createHistogram(`rpcnet_rpc_${side}_call_duration_seconds`, {
    description: `Latency of unary calls (${side}), by method.`,
    unit: "s",
    advice: { explicitBucketBoundaries: [...LATENCY_BUCKETS_S] },
  });
  calls.onCall = (m, code, ms) => {
    const attrs = m.attributes[code] ??= { method: m.method, code: OUTCOME_CODES[code] };
    hist.record(ms / 1000, attrs);
  };
}

/**
 * Registers the metrics of `sources` with an OpenTelemetry meter.
 *
 * @param sources what to read (a node's membership, server, client and call metrics)
 * @param meter an OpenTelemetry `Meter` to register with (default: the global meter provider's
 *   `@rpcnet/cluster` meter)
 * @returns a function that unregisters them
 */
export function registerOtelMetrics(sources: MetricSources, meter?: object): Unregister {
  return register(sources, (meter as Meter | undefined) ?? metrics.getMeter(OTEL_SCOPE));
}

function register(sources: MetricSources, meter: Meter): Unregister {
  // Instruments are created for the families present now; their samples are read per export.
  const families = collectMetrics(sources).filter((f) => f.type !== "histogram");
  const instruments = new Map(families.map((f) => [
    f.name,
    f.type === "counter"
      ? meter.createObservableCounter(f.name, { description: f.help })
      : meter.createObservableGauge(f.name, { description: f.help }),
  ]));
  const callback = (result: { observe: (o: never, v: number, a?: Attributes) => void }) => {
    for (const f of collectMetrics(sources)) {
      if (f.type === "histogram") continue;
      const inst = instruments.get(f.name);
      if (inst === undefined) continue;
      for (const s of f.samples) result.observe(inst as never, s.value, s.labels);
    }
  };
  const observables = [...instruments.values()];
  meter.addBatchObservableCallback(callback, observables);
  if (sources.serverCalls) histogramOf(meter, "server", sources.serverCalls);
  if (sources.clientCalls) histogramOf(meter, "client", sources.clientCalls);
  return () => {
    meter.removeBatchObservableCallback(callback, observables);
    if (sources.serverCalls) sources.serverCalls.onCall = undefined;
    if (sources.clientCalls) sources.clientCalls.onCall = undefined;
  };
}
