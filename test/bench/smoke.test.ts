/**
 * The benchmark's code, run in its tiny mode so it does not rot: every
 * live-path and at-scale figure comes out as a number. No figure is compared with a
 * threshold: how fast is the benchmark's question, not the test suite's.
 * It needs a PostgreSQL server (its own database, LISTEN from a second
 * process), so it runs in the postgres project only.
 */
import { describe, expect, inject, it } from 'vitest';
import { runBenchmark } from '../../bench/run.js';
import { scalePlan } from '../../bench/scale/plan.js';
import type { Summary } from '../../bench/lib/stats.js';
import type { RunSummary } from '../../bench/summary.js';

const SUMMARY_KEYS: (keyof RunSummary)[] = [
  'peerRatio',
  'peerRatioV4',
  'readOverheadMs',
  'readFirstRequestOverheadMs',
  'fanoutSubscribers',
  'fanoutLastMs',
  'heapPerSubscriptionBytes',
  'deliveryCeilingRatio',
  'writeRatioSubmit',
  'writeRatioReport',
];

const target = inject('testDatabase');
const serverUrl = target.kind === 'postgres' ? target.serverUrl : '';

function expectLatency(summary: Summary) {
  expect(summary.n).toBeGreaterThan(0);
  for (const value of [summary.p50, summary.p95, summary.p99]) expect(value).toBeGreaterThan(0);
}

/** Every key present; the measured ones finite numbers (an overhead may be negative), the others null. */
function expectSummary(summary: RunSummary, measured: (keyof RunSummary)[]) {
  expect(Object.keys(summary).sort()).toEqual([...SUMMARY_KEYS].sort());
  for (const key of SUMMARY_KEYS) {
    if (measured.includes(key)) expect(Number.isFinite(summary[key]), key).toBe(true);
    else expect(summary[key], key).toBeNull();
  }
}

describe.skipIf(target.kind !== 'postgres')('npm run bench, tiny mode', () => {
  it('measures every live-path figure', { timeout: 120_000 }, async () => {
    const results = await runBenchmark({ serverUrl, mode: 'tiny', suites: ['live'] });

    expect(results.machine.cpus).toBeGreaterThan(0);
    expect(results.machine.postgres).toMatch(/^\d+/);
    // How fast the machine was, to tell runs of different days apart.
    expect(results.speed.cpuWorkMs).toBeGreaterThan(0);
    expect(results.speed.loopbackRoundTripUs).toBeGreaterThan(0);
    expect(results.speed.stealPercent).toBeGreaterThanOrEqual(0);
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
      // What a change cost each process, the figure that explains the ratio on shared cores.
      for (const step of ramp.steps) {
        const { server, driver, postgres } = step.cpuPerChangeUs;
        for (const us of [server, driver, postgres]) expect(us).toBeGreaterThanOrEqual(0);
        expect(postgres).toBeGreaterThan(0);
      }
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

    // The summary: the live keys measured, the at-scale ones null (not run). The ceiling is a
    // ratio over the raw ramp's sustained rate: on a busy machine even tiny mode's 100 changes/s
    // can fall behind there, and then there is no ratio (null, never a made-up number).
    const ceilingMeasured = live.throughput.raw.sustainedRate > 0;
    expectSummary(results.summary, ['fanoutSubscribers', 'fanoutLastMs', 'heapPerSubscriptionBytes', ...(ceilingMeasured ? (['deliveryCeilingRatio'] as const) : [])]);
    expect(results.summary.fanoutSubscribers).toBe(live.fanout.subscribers);
  });
});

describe.skipIf(target.kind !== 'postgres')('npm run bench, tiny mode: data, queries, peer, writes', () => {
  it('loads the data and measures every at-scale figure', { timeout: 120_000 }, async () => {
    const results = await runBenchmark({ serverUrl, mode: 'tiny', suites: ['data', 'queries', 'peer', 'writes'] });
    const scale = results.scale!;

    // 1: the loader wrote what it says, at a rate.
    expect(scale.data.requests).toBe(scale.plan.requests);
    expect(Object.values(scale.data.byStatus).reduce((a, b) => a + b, 0)).toBe(scale.plan.requests);
    expect(scale.data.byStatus.failed).toBeGreaterThan(0);
    expect(scale.data.byStatus.completed).toBeGreaterThan(0);
    for (const table of scale.data.tables) expect(table.rowsPerSecond).toBeGreaterThan(0);
    expect(scale.data.tables.find((t) => t.table === 'request_events')!.rows).toBeGreaterThan(scale.plan.requests * 3);

    // 2: every pattern as SQL with its plan, and as GraphQL without errors.
    const queries = scale.queries!;
    expect(queries.figures.length).toBeGreaterThanOrEqual(8);
    for (const figure of queries.figures) {
      expect(figure.sqlMs.n).toBeGreaterThanOrEqual(Math.min(20, scale.plan.queries.sqlRuns));
      expect(figure.sqlMs.p50).toBeGreaterThan(0);
      expect(figure.plan.nodes.length).toBeGreaterThan(0);
      if (figure.graphql) {
        expect(figure.graphqlErrors, figure.firstError).toBe(0);
        expect(figure.graphqlMs!.p50).toBeGreaterThan(0);
        expect(figure.graphqlFirstMs!.n).toBeGreaterThan(0);
      }
    }

    // 5: the service and both PostGraphile majors answered the history page
    // (each peer's page checked equal to the service's first), with no errors.
    const peer = scale.peer!;
    expect(peer.peers.map((row) => [row.key, row.peer.version.split('.')[0]])).toEqual([
      ['v5', '5'],
      ['v4', '4'],
    ]);
    for (const side of peer.peers.flatMap((row) => [row.ours, row.theirs])) {
      expect(side.requests).toBeGreaterThan(0);
      expect(side.non2xx + side.graphqlErrors + side.socketErrors, side.firstError).toBe(0);
    }
    for (const row of peer.peers) {
      expect(row.checkedRequests).toBeGreaterThan(0);
      expect(row.ratio.requestsPerSecond).toBeGreaterThan(0);
      // Timed in turns with the service: the ratio is one of the turns' (their median).
      expect(row.rounds).toHaveLength(scalePlan('tiny').peer.rounds);
      expect(row.rounds.map((turn) => turn.ratio)).toContain(row.ratio.requestsPerSecond);
    }

    // 3: both mutations through the API, and the raw statements, with ratios.
    const writes = scale.writes!;
    expect(writes.figures.map((f) => f.name)).toEqual(['submitContentRequest', 'reportStage']);
    for (const figure of writes.figures) {
      expect(figure.api.requests).toBeGreaterThan(0);
      expect(figure.api.non2xx + figure.api.graphqlErrors, figure.api.firstError).toBe(0);
      expect(figure.api.failed, figure.api.firstError).toBe(0);
      // Equal work: each side's changes each wrote their rows and one event.
      expect(figure.unequalWork, figure.work).toEqual([]);
      for (const raw of [figure.rawTriggersOn, figure.rawTriggersOff]) {
        expect(raw.errors, raw.firstError).toBe(0);
        expect(raw.transactions).toBeGreaterThan(0);
      }
      expect(figure.ratioToTriggersOn).toBeGreaterThan(0);
      expect(figure.ratioToTriggersOff).toBeGreaterThan(0);
    }

    // The summary: the at-scale keys measured, the live ones null (not run).
    expectSummary(results.summary, ['peerRatio', 'peerRatioV4', 'readOverheadMs', 'readFirstRequestOverheadMs', 'writeRatioSubmit', 'writeRatioReport']);
    expect(results.summary.peerRatio).toBe(peer.peers[0]!.ratio.requestsPerSecond);
    expect(results.summary.writeRatioReport).toBe(writes.figures[1]!.ratioToTriggersOn);
  });
});

describe.skipIf(target.kind !== 'postgres')('npm run bench, tiny mode: eta', () => {
  it('measures the ETA’s error and the naive baseline’s at every stage', { timeout: 120_000 }, async () => {
    const results = await runBenchmark({ serverUrl, mode: 'tiny', suites: ['eta'] });
    const eta = results.eta!;
    expect(eta.historyStages).toBe(eta.plan.historyRequests * 5);
    expect(eta.organizationsWithOwnEstimates).toBeGreaterThan(0);
    expect(eta.organizationsWithOwnEstimates).toBeLessThan(eta.plan.organizations);
    expect(eta.checkpoints).toHaveLength(10);
    for (const checkpoint of eta.checkpoints) {
      expect(checkpoint.n).toBe(eta.plan.testRequests);
      expect(checkpoint.etaMae).toBeGreaterThan(0);
      expect(checkpoint.everyoneMae).toBeGreaterThan(0);
      expect(checkpoint.naiveMae).toBeGreaterThan(0);
      expect(checkpoint.ratio).toBeCloseTo(checkpoint.etaMae / checkpoint.naiveMae);
    }
  });
});

describe.skipIf(target.kind !== 'postgres')('npm run bench, tiny mode: stalls', () => {
  it('shows the stall check reading its partial indexes, catching up, then marking nothing new', { timeout: 120_000 }, async () => {
    const stalls = (await runBenchmark({ serverUrl, mode: 'tiny', suites: ['stalls'] })).scale!.stalls!;
    expect(stalls.candidates.withIndex.nodes.join(' › ')).toContain('idx_request_stages_running_unstalled');
    expect(stalls.candidates.withoutIndex.nodes.join(' › ')).not.toContain('idx_request_stages_running_unstalled');
    expect(stalls.gauge.plan.nodes.join(' › ')).toContain('idx_request_stages_stalled');
    // The loader leaves requests in flight for up to two hours: some stage has run past twice its time.
    expect(stalls.catchUp.stagesMarked).toBeGreaterThan(0);
    // Later runs mark only what has come due since (a stage crossing its limit meanwhile): far fewer.
    expect(stalls.steady.marked).toBeLessThan(stalls.catchUp.stagesMarked);
  });
});
