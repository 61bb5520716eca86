/**
 * The Prometheus text exposition format (version 0.0.4), written directly: the families are
 * few and flat, and a library would add a dependency to save about forty lines.
 *
 * @module
 */

import { type Labels, LATENCY_BUCKETS_S, type MetricFamily } from "./collect.ts";

/** The `Content-Type` of {@linkcode formatPrometheus}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(labels: Labels, extra?: string): string {
  let s = "";
  for (const k in labels) s += `${s ? "," : ""}${k}="${escapeLabel(labels[k])}"`;
  if (extra) s += `${s ? "," : ""}${extra}`;
  return s ? `{${s}}` : "";
}

function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

const LE = [...LATENCY_BUCKETS_S.map((b) => `le="${b}"`), 'le="+Inf"'];

/** Formats metric families as Prometheus text (families without samples are left out). */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    if (f.samples.length === 0) continue;
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    if (f.type === "histogram") {
      for (const h of f.samples) {
        for (let i = 0; i < h.buckets.length; i++) {
          lines.push(`${f.name}_bucket${labelText(h.labels, LE[i])} ${h.buckets[i]}`);
        }
        lines.push(`${f.name}_sum${labelText(h.labels)} ${num(h.sum)}`);
        lines.push(`${f.name}_count${labelText(h.labels)} ${h.count}`);
      }
    } else {
      for (const s of f.samples) lines.push(`${f.name}${labelText(s.labels)} ${num(s.value)}`);
    }
  }
  return lines.join("\n") + "\n";
}
