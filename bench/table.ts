/**
 * The shape every bench section returns, so `bench/main.ts` can print one table.
 *
 * @module
 */

/** One measured figure; `ratio` rows compare two figures measured in the same run. */
export interface BenchRow {
  /** What was measured, e.g. "RpcClient unary 64 B, 64 in flight". */
  name: string;
  /** The value (median over the section's repetitions). */
  value: number;
  /** Unit, e.g. "req/s", "µs", "MB/s", "x" (ratio), "KiB". */
  unit: string;
  /** Optional target, e.g. ">= 0.7", and whether it was met. */
  target?: string;
  met?: boolean;
  /** Free text: baseline name, spread (min–max), sample count. */
  note?: string;
}

/** A named group of rows (one per bench file). */
export interface BenchSection {
  title: string;
  rows: BenchRow[];
}

/** Median of a list of numbers (NaN when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The q-quantile (0..1) of a list of numbers, nearest-rank. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** Renders sections as a plain-text table. */
export function renderTable(sections: readonly BenchSection[]): string {
  const lines: string[] = [];
  for (const s of sections) {
    lines.push("", `## ${s.title}`, "");
    lines.push("| figure | value | unit | target | met | note |", "|---|---:|---|---|---|---|");
    for (const r of s.rows) {
      const v = Math.abs(r.value) >= 100 ? r.value.toFixed(0) : r.value.toPrecision(3);
      const met = r.met === undefined ? "" : r.met ? "yes" : "NO";
      lines.push(`| ${r.name} | ${v} | ${r.unit} | ${r.target ?? ""} | ${met} | ${r.note ?? ""} |`);
    }
  }
  return lines.join("\n");
}
