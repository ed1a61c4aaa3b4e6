/**
 * Phases 1 and 2: changes committed at a fixed rate, one per transaction,
 * timed to a raw LISTEN client or through the service; and how the two
 * compare, per percentile.
 */
import { round, type Summary } from '../lib/stats.js';
import type { LoadParams, Path } from './driver.js';
import { measuredLoad, type Bench, type Measured } from './phase.js';

export type Ratio = { p50: number; p95: number; p99: number };

export type LatencyFigure = {
  rate: number;
  raw: Measured;
  service: Measured & {
    /** From just before the change was sent until the server's hub had it (its notification parsed). */
    commitToHub: Summary;
    /** Service latency over raw latency, per percentile, for each subscription kind. */
    ratio: Partial<Record<Path, Ratio>>;
  };
};

export function latencyPhase(bench: Bench, paths: Path[], rate: number, returnSends = false) {
  const { plan } = bench;
  return measuredLoad(bench, {
    paths,
    rate,
    warmupMs: plan.latency.warmupMs,
    durationMs: plan.latency.durationMs(rate),
    // Every change is its own transaction, as a worker reports one stage change at a time.
    maxBatch: 1,
    drainMs: plan.latency.drainMs,
    returnSends,
  } satisfies LoadParams);
}

export function ratioOf(service: Summary, raw: Summary): Ratio {
  return { p50: round(service.p50 / raw.p50, 2), p95: round(service.p95 / raw.p95, 2), p99: round(service.p99 / raw.p99, 2) };
}
