/**
 * Phase 3: the most changes a second delivered without falling behind,
 * found by a ramp (raw, and through the service).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { RunningApp } from '../../src/app.js';
import { sleep, until } from '../lib/clock.js';
import type { CpuShares } from '../lib/cpu.js';
import { round } from '../lib/stats.js';
import type { Path, PathResult } from './driver.js';
import { measuredLoad, type Bench } from './phase.js';

export type RampStep = {
  rate: number;
  achievedRate: number;
  transactions: number;
  meanChangesPerTransaction: number;
  commitP50: number;
  paths: Partial<Record<Path, { p50: number; p99: number; firstThirdP50: number; lastThirdP50: number; missing: number }>>;
  /** Cores used by the service (this process), the writer and clients, PostgreSQL for this database, and anything else. */
  cpu: CpuShares;
  /**
   * The same as CPU time per change, in µs: on a machine where all of them
   * share the cores, the ratio of the two ramps' rates is about the ratio of
   * what a change costs in all on each side.
   */
  cpuPerChangeUs: { server: number; driver: number; postgres: number };
  /** The service's event loop delay, p99 in ms (service ramp only). */
  serverEventLoopDelayP99: number;
  keptUp: boolean;
  reasons: string[];
};

export type Ramp = {
  /** The highest rate that kept up (0 if none did), and what it achieved. */
  sustainedRate: number;
  sustainedAchievedRate: number;
  /** Why the next step up failed, or that the ramp reached its top. */
  limit: string;
  steps: RampStep[];
};

/**
 * Doubles the rate until a step falls behind, then bisects between the last
 * good and the first bad rate; raw and through the service alike, each after
 * the same warm-up. A step keeps up when the writer reached 95% of
 * the rate, every change arrived on every path (within the drain time), no
 * subscription was cut, and the median latency of the step's last third is
 * not far above its first third's (a growing backlog shows there first).
 */
export async function ramp(
  bench: Bench,
  paths: Path[],
  service: { running: RunningApp; reopen: () => Promise<unknown> } | undefined,
): Promise<Ramp> {
  const { driver, plan, log } = bench;
  const steps: RampStep[] = [];
  let good: RampStep | undefined;
  let bad: RampStep | undefined;
  // Unmeasured load after each setup (the ramp's start; the service's
  // subscriptions reopened): what the setup left to do (collecting its
  // garbage, a thousand first deliveries) would otherwise land in the next
  // step's last third and read as a growing backlog.
  const warmUp = async () => {
    if (plan.ramp.warmupMs <= 0) return;
    const { startRate, warmupMs, maxBatch, drainMs } = plan.ramp;
    await measuredLoad(bench, { paths, rate: startRate, warmupMs: 0, durationMs: warmupMs, maxBatch, drainMs });
  };
  await warmUp();
  const runStep = async (rate: number) => {
    const step = await rampStep(bench, paths, rate, service);
    steps.push(step);
    log(
      `${service ? 'service' : 'raw'} ramp ${formatRate(rate)}/s: achieved ${formatRate(step.achievedRate)}/s, ` +
        paths.map((p) => `${p} p50 ${step.paths[p]?.p50?.toFixed(1)} ms`).join(', ') +
        (step.keptUp ? ' — kept up' : ` — behind: ${step.reasons.join('; ')}`),
    );
    if (service && (!step.keptUp || (await driver.call<number>('liveEnded')) > 0)) {
      // Let the backlog clear and bring back any subscription the server cut.
      await sleep(1_000);
      await driver.call('closeLive');
      await until(() => service.running.hub.subscriberCount === 0, 10_000);
      await service.reopen();
      await warmUp();
    }
    return step;
  };
  for (let rate = plan.ramp.startRate; rate <= plan.ramp.maxRate; rate *= 2) {
    const step = await runStep(rate);
    if (step.keptUp) good = step;
    else {
      bad = step;
      break;
    }
  }
  for (let i = 0; i < plan.ramp.bisect && good && bad; i++) {
    const rate = roundRate((good.rate + bad.rate) / 2);
    if (rate <= good.rate || rate >= bad.rate) break;
    const step = await runStep(rate);
    if (step.keptUp) good = step;
    else bad = step;
  }
  return {
    sustainedRate: good?.rate ?? 0,
    sustainedAchievedRate: round(good?.achievedRate ?? 0, 0),
    limit: bad
      ? `kept up to ${formatRate(good?.rate ?? 0)}/s; behind at ${formatRate(bad.rate)}/s: ${bad.reasons.join('; ')}`
      : `kept up to the ramp's top (${formatRate(good?.rate ?? 0)}/s)`,
    steps,
  };
}

async function rampStep(
  bench: Bench,
  paths: Path[],
  rate: number,
  service: { running: RunningApp } | undefined,
): Promise<RampStep> {
  const { driver, plan } = bench;
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const result = await measuredLoad(bench, {
    paths,
    rate,
    warmupMs: 0,
    durationMs: plan.ramp.stepMs,
    maxBatch: plan.ramp.maxBatch,
    drainMs: plan.ramp.drainMs,
  });
  loopDelay.disable();
  const reasons: string[] = [];
  if (result.achievedRate < 0.95 * rate) {
    reasons.push(`the writer committed only ${formatRate(result.achievedRate)}/s (database-bound)`);
  }
  for (const path of paths) {
    const figures = result.paths[path]!;
    if (figures.missing > 0) reasons.push(`${path}: ${figures.missing} of ${figures.expected} not delivered ${plan.ramp.drainMs} ms after the step`);
    if (fellBehind(figures)) {
      reasons.push(`${path}: median lag grew from ${figures.firstThirdP50.toFixed(1)} to ${figures.lastThirdP50.toFixed(1)} ms`);
    }
  }
  if (service) {
    const ended = await driver.call<number>('liveEnded');
    if (ended > 0) reasons.push(`${ended} subscriptions cut by the server (too far behind)`);
  }
  return {
    rate,
    achievedRate: round(result.achievedRate, 0),
    transactions: result.transactions,
    meanChangesPerTransaction: round(result.changes / Math.max(1, result.transactions), 1),
    commitP50: result.commitMs.p50,
    paths: Object.fromEntries(
      paths.map((path) => {
        const f = result.paths[path]!;
        return [path, { p50: f.latency.p50, p99: f.latency.p99, firstThirdP50: round(f.firstThirdP50), lastThirdP50: round(f.lastThirdP50), missing: f.missing }];
      }),
    ),
    cpu: result.cpu,
    cpuPerChangeUs: perChange(result.cpu, plan.ramp.stepMs + result.drainedMs, result.changes),
    serverEventLoopDelayP99: service ? round(loopDelay.percentile(99) / 1e6, 1) : NaN,
    keptUp: reasons.length === 0,
    reasons,
  };
}

/** Cores over a step's wall time, as µs of CPU per change. */
function perChange(cpu: CpuShares, wallMs: number, changes: number): RampStep['cpuPerChangeUs'] {
  const us = (cores: number) => round((cores * wallMs * 1000) / Math.max(1, changes), 0);
  return { server: us(cpu.server), driver: us(cpu.driver), postgres: us(cpu.postgres) };
}

/** A backlog that grows during the step shows as a last third much slower than the first. */
function fellBehind(figures: PathResult): boolean {
  const { firstThirdP50: first, lastThirdP50: last } = figures;
  if (!Number.isFinite(first) || !Number.isFinite(last)) return false;
  return last - first > Math.max(25, first);
}

function roundRate(rate: number): number {
  const magnitude = 10 ** Math.max(0, Math.floor(Math.log10(rate)) - 1);
  return Math.round(rate / magnitude) * magnitude;
}

function formatRate(rate: number): string {
  return Math.round(rate).toLocaleString('en-US');
}
