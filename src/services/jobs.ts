/**
 * Periodic jobs that run in one process at a time, however many replicas
 * there are (docs/operations.md, "Periodic work").
 *
 * Each job has a row in `job_leases`. Every process ticks six times an
 * interval and, at each tick, tries to take or renew the job's lease with one
 * conditional upsert: it wins when the lease is free, expired, or already its
 * own. The holder runs the job when the row says the last run ended an
 * interval ago or more. A lease lasts four ticks, so a live holder keeps it
 * through three missed renewals (a late timer, a slow statement); one that
 * dies stops renewing, its lease runs out at most two thirds of an interval
 * after its last renewal, and another process takes over at its next tick:
 * within one interval, and it runs the job then only if it is due (the last
 * run's time stays in the row). Stopping expires the lease at once. One
 * statement, no session state: it works through a transaction-mode pooler
 * and on PGlite alike.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { eq, sql } from 'drizzle-orm';
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

/**
 * Takes or renews the lease for `leaseMs`. `held`: this holder has it now;
 * `due`: the job's last run (by whichever holder) ended `intervalMs` ago or more, or never.
 */
async function takeLease(
  db: Queryable,
  job: string,
  holder: string,
  leaseMs: number,
  intervalMs: number,
): Promise<{ held: boolean; due: boolean }> {
  const rows = await db
    .insert(jobLeases)
    .values({ jobName: job, holder, expiresAt: sql`now() + ${leaseMs} * interval '1 millisecond'` })
    .onConflictDoUpdate({
      target: jobLeases.jobName,
      set: { holder, expiresAt: sql`excluded.expires_at` },
      setWhere: sql`${jobLeases.holder} = excluded.holder or ${jobLeases.expiresAt} < now()`,
    })
    .returning({
      due: sql<boolean>`${jobLeases.lastRunAt} is null or ${jobLeases.lastRunAt} <= now() - ${intervalMs} * interval '1 millisecond'`,
    });
  const row = rows[0];
  return { held: row !== undefined, due: row?.due === true };
}

// Ticks per interval, and how many ticks a lease lasts (two thirds of an interval).
const TICKS_PER_INTERVAL = 6;
const LEASE_TICKS = 4;

export function startJobs(db: Queryable, jobs: readonly PeriodicJob[], options: JobSchedulerOptions): JobScheduler {
  const holder = options.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const logger = options.logger.child({ component: 'jobs' });
  const timers: NodeJS.Timeout[] = [];
  const inFlight = new Set<Promise<void>>();
  let stopped = false;

  for (const job of jobs) {
    const tickMs = Math.max(1, Math.floor(job.intervalMs / TICKS_PER_INTERVAL));
    const leaseMs = LEASE_TICKS * tickMs;
    let running = false;
    const run = async () => {
      try {
        await job.run(db);
        options.onRun?.(job.name, 'success');
      } catch (error) {
        options.onRun?.(job.name, 'failure');
        logger.error({ err: error, job: job.name }, 'periodic job failed; it runs again next interval');
      }
      // Success or failure, the next run is an interval from now, whichever process holds the lease
      // then (even one that took it during a run that outlived this process's renewals).
      await db.update(jobLeases).set({ lastRunAt: sql`now()` }).where(eq(jobLeases.jobName, job.name));
    };
    const tick = async () => {
      let lease: { held: boolean; due: boolean };
      try {
        // Renewed at every tick, during a run too: a long run keeps its lease, so no other process starts the job.
        lease = await takeLease(db, job.name, holder, leaseMs, job.intervalMs);
      } catch (error) {
        logger.warn({ err: error, job: job.name }, 'could not take or renew the job lease; trying again next tick');
        return;
      }
      if (!lease.held || !lease.due || running || stopped) return;
      running = true;
      const current = run()
        .catch((error: unknown) => logger.error({ err: error, job: job.name }, 'could not record the job run'))
        .finally(() => {
          running = false;
          inFlight.delete(current);
        });
      inFlight.add(current);
    };
    const onTick = () => {
      if (stopped) return;
      const ticking = tick().finally(() => inFlight.delete(ticking));
      inFlight.add(ticking);
    };
    timers.push(setInterval(onTick, tickMs).unref());
    onTick();
  }

  return {
    holder,
    async stop() {
      stopped = true;
      for (const timer of timers.splice(0)) clearInterval(timer);
      // A tick's lease statement may start a run: wait for both until none is left.
      while (inFlight.size > 0) await Promise.all(inFlight);
      if (jobs.length === 0) return;
      // Another process takes the jobs over at its next tick; the last runs' times stay, so it runs them when due.
      await db
        .update(jobLeases)
        .set({ expiresAt: sql`now() - interval '1 millisecond'` })
        .where(eq(jobLeases.holder, holder))
        .catch((error: unknown) => logger.warn({ err: error }, 'could not release the job leases; they expire by themselves'));
    },
  };
}
