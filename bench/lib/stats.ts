/** Percentiles by nearest rank on the sorted samples: no interpolation, every figure is a sample that happened. */
export type Summary = { n: number; p50: number; p95: number; p99: number; min: number; max: number; mean: number };

export const EMPTY_SUMMARY: Summary = { n: 0, p50: NaN, p95: NaN, p99: NaN, min: NaN, max: NaN, mean: NaN };

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(values: ArrayLike<number>): Summary {
  if (values.length === 0) return { ...EMPTY_SUMMARY };
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    mean: sum / sorted.length,
  };
}

/** Rounds for JSON: three decimals is a microsecond on millisecond figures. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function roundSummary(summary: Summary): Summary {
  return {
    n: summary.n,
    p50: round(summary.p50),
    p95: round(summary.p95),
    p99: round(summary.p99),
    min: round(summary.min),
    max: round(summary.max),
    mean: round(summary.mean),
  };
}
