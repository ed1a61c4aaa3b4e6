/**
 * Periodic jobs that run in one process at a time, however many replicas
 * there are (docs/operations.md, "Periodic work").
 *
 * Each job has a row in `job_leases`. Every process ticks every interval and
 * tries to take or renew the job's lease with one conditional upsert: it wins
 * when the lease is free, expired, or already its own. Only the holder runs
 * the job. A lease lasts two intervals and is renewed at each tick and, during
 * a long run, every third of an interval, so a live holder keeps it with an
 * interval to spare (a late timer, a slow statement); one that dies stops
 * renewing, and another process takes over at its first tick after the lease
 * runs out: within three intervals of the last run, usually two. Stopping
 * releases the lease, so a clean shutdown hands over at the next tick. One
 * statement, no session state: it works through a transaction-mode pooler
 * and on PGlite alike.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { and, eq, sql } from 'drizzle-orm';
import type { Queryable } from '../db/client.js';
import { jobLeases } from '../db/tables.js';
import type { Logger } from '../logger.js';

export interface PeriodicJob {
  /** Fixed, short, and the metrics label: never anything a user typed. */
  readonly name: string;
  readonly intervalMs: number;
  run(db: Queryable): Promise<void>;
}

export type JobOutcome = 'success' | 'failure';

export type JobScheduler = {
  /** This process's name in `job_leases.holder`. */
  readonly holder: string;
  /** Stops the timers, waits for runs in flight, and gives up this process's leases. */
  stop(): Promise<void>;
};

export type JobSchedulerOptions = {
  logger: Logger;
  /** Called after every run this process makes (the job-runs counter). */
  onRun?: (job: string, outcome: JobOutcome) => void;
  holder?: string;
};

/** Takes or renews the lease for `ms`; true when this holder has it now. */
async function takeLease(db: Queryable, job: string, holder: string, ms: number): Promise<boolean> {
  const rows = await db
    .insert(jobLeases)
    .values({ jobName: job, holder, expiresAt: sql`now() + ${ms} * interval '1 millisecond'` })
    .onConflictDoUpdate({
      target: jobLeases.jobName,
      set: { holder, expiresAt: sql`excluded.expires_at` },
      setWhere: sql`${jobLeases.holder} = excluded.holder or ${jobLeases.expiresAt} < now()`,
    })
    .returning({ holder: jobLeases.holder });
  return rows.length === 1;
}

/** How long a lease lasts, in intervals of its job. */
const LEASE_INTERVALS = 2;

export function startJobs(db: Queryable, jobs: readonly PeriodicJob[], options: JobSchedulerOptions): JobScheduler {
  const holder = options.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const logger = options.logger.child({ component: 'jobs' });
  const timers: NodeJS.Timeout[] = [];
  const inFlight = new Set<Promise<void>>();
  let stopped = false;

  for (const job of jobs) {
    let running = false;
    const leaseMs = LEASE_INTERVALS * job.intervalMs;
    const runOnce = async () => {
      try {
        if (!(await takeLease(db, job.name, holder, leaseMs))) return;
      } catch (error) {
        logger.error({ err: error, job: job.name }, 'could not take the job lease; trying again next interval');
        return;
      }
      // A run longer than the lease must not let another process start the same job.
      const renew = setInterval(() => {
        takeLease(db, job.name, holder, leaseMs).catch((error: unknown) =>
          logger.warn({ err: error, job: job.name }, 'could not renew the job lease during a run'),
        );
      }, Math.max(1, Math.floor(job.intervalMs / 3))).unref();
      try {
        await job.run(db);
        options.onRun?.(job.name, 'success');
        await db
          .update(jobLeases)
          .set({ lastRunAt: sql`now()` })
          .where(and(eq(jobLeases.jobName, job.name), eq(jobLeases.holder, holder)));
      } catch (error) {
        options.onRun?.(job.name, 'failure');
        logger.error({ err: error, job: job.name }, 'periodic job failed; it runs again next interval');
      } finally {
        clearInterval(renew);
      }
    };
    const tick = () => {
      // Never two runs of one job in this process: a run still going skips the tick.
      if (stopped || running) return;
      running = true;
      const run = runOnce().finally(() => {
        running = false;
        inFlight.delete(run);
      });
      inFlight.add(run);
    };
    timers.push(setInterval(tick, job.intervalMs).unref());
    tick();
  }

  return {
    holder,
    async stop() {
      stopped = true;
      for (const timer of timers.splice(0)) clearInterval(timer);
      await Promise.all(inFlight);
      if (jobs.length === 0) return;
      // Another process takes the jobs over at its next tick, not when the leases would have expired.
      await db
        .delete(jobLeases)
        .where(eq(jobLeases.holder, holder))
        .catch((error: unknown) => logger.warn({ err: error }, 'could not release the job leases; they expire by themselves'));
    },
  };
}
