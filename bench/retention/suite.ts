/**
 * The retention phase (`npm run bench -- --only retention`): on the loaded
 * history (1,000,000 requests and about 5,000,000 events in full mode, created
 * over 90 days, so about two thirds finished more than 30 days ago), the
 * service's own batched purge runs next to writers making reportStage calls
 * on requests in flight. Measured: each purge transaction's length (the
 * longest is how long any row stays locked), the rows removed a second, and
 * the writers' throughput and latency during the purge against the same
 * writers without it, before and after, in the same run.
 */
import pg from 'pg';
import { connectPostgres } from '../../src/db/client.js';
import { countPurgeable, purgeFinishedRequests, retentionCutoff, type PurgeCounts } from '../../src/services/retention.js';
import { reportStage } from '../../src/services/stages.js';
import type { Viewer } from '../../src/services/access.js';
import { loadData } from '../data/load.js';
import { createBenchDatabase } from '../lib/database.js';
import { round, roundSummary, summarize, type Summary } from '../lib/stats.js';
import { formatCount, formatMs, formatRatio, renderTable } from '../lib/table.js';
import type { Mode } from '../live/plan.js';

export type WriteRate = { writes: number; perSecond: number; latency: Summary; errors: number };

export type RetentionResults = {
  requests: number;
  batchSize: number;
  writers: number;
  phaseMs: number;
  /** What the dry run counted, and how long counting took. */
  purgeable: PurgeCounts & { countMs: number };
  /** The candidate query's plan, first line: an index scan, not a scan of every request. */
  candidatePlan: string;
  purge: PurgeCounts & { batches: number; batchMs: Summary; requestsPerSecond: number; eventsPerSecond: number };
  writesBefore: WriteRate;
  writesDuringPurge: WriteRate;
  writesAfter: WriteRate;
  /** Writes a second during the purge over before it, and over after it; p99 latency during over before. */
  throughputRatio: number;
  throughputRatioToAfter: number;
  p99Ratio: number;
};

const PLANS: Record<Mode, { requests: number; phaseMs: number }> = {
  full: { requests: 1_000_000, phaseMs: 30_000 },
  quick: { requests: 100_000, phaseMs: 10_000 },
  tiny: { requests: 2_000, phaseMs: 1_500 },
};
const BATCH_SIZE = 500; // RETENTION_BATCH_SIZE's default
const WRITERS = 8;
const WORKER: Viewer = { userId: 'bench-worker', role: 'worker', organizationId: null };

export async function runRetentionBenchmark(options: { serverUrl: string; mode: Mode; log?: (line: string) => void }): Promise<RetentionResults> {
  const { requests, phaseMs } = PLANS[options.mode];
  const log = options.log ?? (() => undefined);
  const bench = await createBenchDatabase(options.serverUrl, 'retention');
  try {
    log(`database ${bench.name}; loading ${requests.toLocaleString('en-US')} requests`);
    await loadData({ url: bench.url, requests, students: Math.min(10_000, requests / 10), organizations: 100, log });
    const database = connectPostgres({ url: bench.url, poolSize: WRITERS + 2, applicationName: 'tracker-bench:retention' });
    if (database.kind !== 'postgres') throw new Error('the benchmark runs on a PostgreSQL server');
    try {
      const db = database.db;
      const cutoff = retentionCutoff(30)!;
      const countStarted = performance.now();
      const purgeable = { ...(await countPurgeable(db, cutoff)), countMs: Math.round(performance.now() - countStarted) };
      log(`purgeable: ${purgeable.requests} requests, ${purgeable.events} events (counted in ${purgeable.countMs} ms)`);
      const candidatePlan = await planOfCandidates(database.pool, cutoff);

      const targets = await runningStages(database.pool);
      const writesFor = (ms: number) => runWriters(db, targets, ms);
      await writesFor(Math.min(2_000, phaseMs)); // warm-up, not reported
      const writesBefore = await writesFor(phaseMs);
      log(`writes without a purge: ${writesBefore.perSecond}/s`);

      const stop = new AbortController();
      const batchMs: number[] = [];
      const purgeStarted = performance.now();
      // Paced, as the service's job runs it.
      const purging = purgeFinishedRequests(db, {
        cutoff,
        batchSize: BATCH_SIZE,
        signal: stop.signal,
        afterBatch: (_batch, ms) => batchMs.push(ms),
      });
      const writesDuringPurge = await writesFor(phaseMs);
      stop.abort();
      const removed = await purging;
      const purgeSeconds = (performance.now() - purgeStarted) / 1000;
      log(`writes during the purge: ${writesDuringPurge.perSecond}/s; removed ${removed.requests} requests in ${batchMs.length} batches`);
      const writesAfter = await writesFor(phaseMs);

      return {
        requests,
        batchSize: BATCH_SIZE,
        writers: WRITERS,
        phaseMs,
        purgeable,
        candidatePlan,
        purge: {
          ...removed,
          batches: batchMs.length,
          batchMs: roundSummary(summarize(batchMs)),
          requestsPerSecond: Math.round(removed.requests / purgeSeconds),
          eventsPerSecond: Math.round(removed.events / purgeSeconds),
        },
        writesBefore,
        writesDuringPurge,
        writesAfter,
        throughputRatio: round(writesDuringPurge.perSecond / writesBefore.perSecond),
        throughputRatioToAfter: round(writesDuringPurge.perSecond / writesAfter.perSecond),
        p99Ratio: round(writesDuringPurge.latency.p99 / writesBefore.latency.p99),
      };
    } finally {
      await database.close();
    }
  } finally {
    await bench.drop();
  }
}

async function planOfCandidates(pool: pg.Pool, cutoff: Date): Promise<string> {
  const { rows } = await pool.query<{ 'QUERY PLAN': string }>(
    `explain select id from content_requests
      where status in ('completed', 'failed', 'cancelled') and updated_at < $1
      order by updated_at limit ${BATCH_SIZE} for update skip locked`,
    [cutoff],
  );
  return rows.map((row) => row['QUERY PLAN'].trim()).find((line) => /Scan/.test(line)) ?? rows[0]!['QUERY PLAN'];
}

type Target = { requestId: string; stage: string };

/** Requests in flight with their running stage: what the writers report progress on. */
async function runningStages(pool: pg.Pool): Promise<Target[]> {
  const { rows } = await pool.query<{ request_id: string; stage_name: string }>(
    `select s.request_id, s.stage_name from request_stages s
       join content_requests r on r.id = s.request_id
      where s.status = 'in_progress' and r.status not in ('completed', 'failed', 'cancelled')
      limit 2000`,
  );
  return rows.map((row) => ({ requestId: row.request_id, stage: row.stage_name }));
}

/** WRITERS loops of reportStage (progress on a running stage), each on its own share of the requests, for `ms`. */
async function runWriters(db: Parameters<typeof reportStage>[0], targets: Target[], ms: number): Promise<WriteRate> {
  const latencies: number[] = [];
  let errors = 0;
  const until = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, writer) => {
      const mine = targets.filter((_, i) => i % WRITERS === writer);
      for (let n = 0; performance.now() < until && mine.length > 0; n++) {
        const target = mine[n % mine.length]!;
        const t0 = performance.now();
        try {
          await reportStage(db, WORKER, { ...target, status: 'in_progress', progress: 1 + ((n + writer) % 98) });
          latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { writes: latencies.length, perSecond: Math.round(latencies.length / seconds), latency: roundSummary(summarize(latencies)), errors };
}

export function renderRetention(r: RetentionResults): string[] {
  const triple = (s: Summary) => `${formatMs(s.p50)} / ${formatMs(s.p99)} / ${formatMs(s.max)}`;
  const write = (name: string, w: WriteRate) => [name, formatCount(w.perSecond), triple(w.latency), formatCount(w.errors)];
  return [
    `Retention at ${formatCount(r.requests)} requests: batches of ${r.batchSize}, ${r.writers} reportStage writers, ${r.phaseMs / 1000} s a phase`,
    `purgeable (finished > 30 days ago): ${formatCount(r.purgeable.requests)} requests, ${formatCount(r.purgeable.stages)} stages, ` +
      `${formatCount(r.purgeable.events)} events; dry-run count ${formatCount(r.purgeable.countMs)} ms`,
    `candidate query: ${r.candidatePlan}`,
    `purged during the phase: ${formatCount(r.purge.requests)} requests, ${formatCount(r.purge.events)} events in ${r.purge.batches} batches ` +
      `(${formatCount(r.purge.requestsPerSecond)} requests/s, ${formatCount(r.purge.eventsPerSecond)} events/s); ` +
      `purge transaction ms p50 / p99 / longest: ${triple(r.purge.batchMs)}`,
    '',
    ...renderTable(
      [{ title: 'reportStage writes' }, { title: 'per second', align: 'right' }, { title: 'ms p50 / p99 / max', align: 'right' }, { title: 'errors', align: 'right' }],
      [write('without a purge (before)', r.writesBefore), write('during the purge', r.writesDuringPurge), write('without a purge (after)', r.writesAfter)],
    ).split('\n'),
    `during / before: throughput ${formatRatio(r.throughputRatio)}, p99 latency ${formatRatio(r.p99Ratio)}; ` +
      `during / after: throughput ${formatRatio(r.throughputRatioToAfter)}`,
  ];
}
