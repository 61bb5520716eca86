/**
 * Observability: metrics (Prometheus text and OpenTelemetry), health endpoints, the live status
 * page, and the tracing interceptors.
 *
 * @module
 */

export {
  NodeObserver,
  type NodeStatus,
  observe,
  type ObservedNode,
  type ObserveOptions,
  type StatusMember,
} from "./observer.ts";
export {
  CallMetrics,
  type CallObserver,
  LATENCY_BUCKETS_S,
  LatencyHistogram,
  MAX_TRACKED_METHODS,
  MethodMetrics,
  OUTCOME_CODES,
} from "./call_metrics.ts";
export {
  collectMetrics,
  type HistogramSample,
  type Labels,
  type MetricFamily,
  type MetricSources,
  type Sample,
} from "./collect.ts";
export { formatPrometheus, PROMETHEUS_CONTENT_TYPE } from "./prometheus.ts";
export { OTEL_SCOPE, registerOtelMetrics, type Unregister } from "./otel.ts";
export {
  clientTracing,
  formatTraceparent,
  parseTraceparent,
  serverTracing,
  type TraceParent,
  type TracingOptions,
} from "./tracing.ts";
