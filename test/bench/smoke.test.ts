/**
 * The benchmark's code, run in its tiny mode so it does not rot: every
 * live-path figure comes out as a number. No figure is compared with a
 * threshold: how fast is the benchmark's question, not the test suite's.
 * It needs a PostgreSQL server (its own database, LISTEN from a second
 * process), so it runs in the postgres project only.
 */
import { describe, expect, inject, it } from 'vitest';
import { runBenchmark } from '../../bench/run.js';
import type { Summary } from '../../bench/lib/stats.js';

const target = inject('testDatabase');
const serverUrl = target.kind === 'postgres' ? target.serverUrl : '';

function expectLatency(summary: Summary) {
  expect(summary.n).toBeGreaterThan(0);
  for (const value of [summary.p50, summary.p95, summary.p99]) expect(value).toBeGreaterThan(0);
}

describe.skipIf(target.kind !== 'postgres')('npm run bench, tiny mode', () => {
  it('measures every live-path figure', { timeout: 120_000 }, async () => {
    const results = await runBenchmark({ serverUrl, mode: 'tiny' });

    expect(results.machine.cpus).toBeGreaterThan(0);
    expect(results.machine.postgres).toMatch(/^\d+/);
    const live = results.live!;

    // 1 and 2: raw and through the service, at each fixed rate, with ratios.
    expect(live.latency.map((figure) => figure.rate)).toEqual([100, 1000]);
    for (const figure of live.latency) {
      expectLatency(figure.raw.paths.raw!.latency);
      for (const path of ['progress', 'feed'] as const) {
        expectLatency(figure.service.paths[path]!.latency);
        expect(figure.service.ratio[path]!.p50).toBeGreaterThan(0);
        expect(figure.service.paths[path]!.missing).toBe(0);
        expect(figure.service.paths[path]!.duplicates).toBe(0);
      }
      expectLatency(figure.service.commitToHub);
    }

    // 3: the ramps ran and measured. (Which step kept up depends on the
    // machine's load at the time, so the sustained rate is only a number here.)
    for (const ramp of [live.throughput.raw, live.throughput.service]) {
      expect(ramp.steps.length).toBeGreaterThan(0);
      expect(ramp.steps[0]!.achievedRate).toBeGreaterThan(0);
      expect(Number.isFinite(ramp.sustainedRate)).toBe(true);
    }

    // 4: heap per subscription and fan-out to every subscriber.
    expect(live.heap.perSubscriptionBytes).toBeGreaterThan(0);
    expect(live.heap.hubSubscribersOpen).toBe(live.heap.subscriptions);
    expect(live.heap.hubSubscribersAfterClose).toBe(0);
    expect(live.heap.subscribeRate).toBeGreaterThan(0);
    expect(live.fanout.rounds).toBeGreaterThan(0);
    expectLatency(live.fanout.last);
    expect(live.fanout.serverLastSend.n).toBe(live.fanout.rounds);

    expect(live.integrity).toMatchObject({ progressGaps: 0, outOfOrder: 0, ended: 0 });
  });
});
