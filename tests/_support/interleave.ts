/** Test helper: steps several generators in turn until all are done; returns the sum of their results. */
export function runInterleaved(runs: Iterator<unknown, number>[]): number {
  let total = 0;
  let live = runs.length;
  while (live > 0) {
    live = 0;
    for (const it of runs) {
      const r = it.next();
      if (r.done) total += r.value;
      else live++;
    }
  }
  return total;
}
