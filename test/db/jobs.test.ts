/**
 * The job scheduler (src/services/jobs.ts) on a real database: two
 * schedulers, as two replicas would run them, share one job's lease, so only
 * one of them runs it; a run longer than the interval keeps its lease and is
 * never joined by a second one; stopping the holder hands the job to the
 * other at its next tick; a holder that dies without a word loses the job
 * when its lease runs out, and the taker runs it only when it is due; a
 * failing run is logged, counted and tried again.
 * Processes that die without stopping are test/live/stall-processes.test.ts.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startJobs, type JobOutcome, type JobScheduler, type PeriodicJob } from '../../src/services/jobs.js';
import { captureLogs } from '../helpers/app.js';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/database.js';

let t: TestDatabase;
const schedulers: JobScheduler[] = [];
const { logger, logs } = captureLogs();

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await Promise.all(schedulers.map((scheduler) => scheduler.stop()));
  await t?.close();
});

// Long enough that a tick's statement on a loaded machine stays well inside a lease (four ticks: 400 ms).
const INTERVAL_MS = 600;

function start(jobs: PeriodicJob[], holder: string, outcomes: [string, JobOutcome][] = []) {
  const scheduler = startJobs(t.database.db, jobs, { logger, holder, onRun: (job, outcome) => outcomes.push([job, outcome]) });
  schedulers.push(scheduler);
  return scheduler;
}

async function leaseOf(job: string) {
  const result = (await t.database.db.execute(sql`select holder, expires_at from job_leases where job_name = ${job}`)) as {
    rows: { holder: string; expires_at: Date | string }[];
  };
  return result.rows[0];
}

test('two schedulers, one job: one of them runs it; stopping that one hands it to the other', async () => {
  const runs: string[] = [];
  const job = (holder: string): PeriodicJob => ({
    name: 'test-handover',
    intervalMs: INTERVAL_MS,
    run: async () => void runs.push(holder),
  });
  const first = start([job('first')], 'first');
  const second = start([job('second')], 'second');
  await waitFor(() => runs.length >= 6, 'six runs');
  const [runner, other] = runs[0] === 'first' ? [first, 'second'] : [second, 'first'];
  expect(new Set(runs)).toEqual(new Set([runs[0]]));
  expect((await leaseOf('test-handover'))?.holder).toBe(runs[0]);

  await runner.stop();
  const stoppedAt = runs.length;
  await waitFor(() => runs.slice(stoppedAt).includes(other), `a run by ${other}`);
  expect(runs.slice(stoppedAt).every((holder) => holder === other)).toBe(true);
  expect((await leaseOf('test-handover'))?.holder).toBe(other);
});

test('a run longer than the interval keeps its lease: no second run starts, here or in the other scheduler', async () => {
  let running = 0;
  let mostAtOnce = 0;
  let runs = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const job: PeriodicJob = {
    name: 'test-long-run',
    intervalMs: INTERVAL_MS,
    async run() {
      runs++;
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      if (runs === 1) await released;
      running--;
    },
  };
  start([job], 'long-a');
  start([job], 'long-b');
  await waitFor(() => runs === 1, 'the first run');
  // The lease's own renewals (six an interval) are the clock: thirteen of them span two intervals, so both schedulers have ticked.
  const expirations = new Set<string>();
  const deadline = Date.now() + 10_000;
  while (expirations.size < 13 && Date.now() < deadline) {
    expirations.add(String((await leaseOf('test-long-run'))?.expires_at));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(expirations.size).toBeGreaterThanOrEqual(13);
  expect(runs).toBe(1);
  release();
  await waitFor(() => runs >= 3, 'runs after the long one');
  expect(mostAtOnce).toBe(1);
});

test('a failing run is logged with the job’s name, counted as a failure, and tried again next interval', async () => {
  let attempts = 0;
  const outcomes: [string, JobOutcome][] = [];
  start(
    [
      {
        name: 'test-flaky',
        intervalMs: INTERVAL_MS,
        async run() {
          attempts++;
          if (attempts === 1) throw new Error('the first run fails');
        },
      },
    ],
    'flaky',
    outcomes,
  );
  await waitFor(() => outcomes.some(([, outcome]) => outcome === 'success'), 'a successful run after the failure');
  expect(outcomes.slice(0, 2)).toEqual([
    ['test-flaky', 'failure'],
    ['test-flaky', 'success'],
  ]);
  const logged = logs.find((line) => line.job === 'test-flaky' && line.level === 50);
  expect(logged?.msg).toMatch(/periodic job failed/);
});

test('a holder that died without releasing: its lease runs out, another takes the job and runs it only when due', async () => {
  const runs: string[] = [];
  const job = (name: string): PeriodicJob => ({ name, intervalMs: INTERVAL_MS, run: async () => void runs.push(name) });
  // A dead process's leases, as it left them: one job overdue, one whose last run is recorded as still ahead (never due here).
  await t.database.db.execute(sql`
    insert into job_leases (job_name, holder, expires_at, last_run_at) values
      ('test-dead-overdue', 'dead', now() + interval '300 milliseconds', now() - interval '1 hour'),
      ('test-dead-not-due', 'dead', now() + interval '300 milliseconds', now() + interval '1 hour')`);
  start([job('test-dead-not-due'), job('test-dead-overdue')], 'taker');
  await waitFor(() => runs.filter((name) => name === 'test-dead-overdue').length >= 2, 'the overdue job run twice by the taker', 10_000);
  expect((await leaseOf('test-dead-overdue'))?.holder).toBe('taker');
  expect((await leaseOf('test-dead-not-due'))?.holder).toBe('taker');
  // The taker holds both leases, but the time of the last run stayed with the job: not due, not run.
  expect(runs).not.toContain('test-dead-not-due');
});
