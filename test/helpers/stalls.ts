/**
 * Making a stage look old, and waiting for the stall check, without guessing
 * how long anything takes: the check's own record (job_leases.last_run_at)
 * says when a run has finished.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../../src/db/client.js';

type SqlRows<T> = { rows: T[] };

/**
 * Moves a running stage's start and last change `hours` into the past, as if
 * its worker had gone quiet that long. The row's triggers are off for this
 * one statement (updated_at would be stamped now otherwise).
 */
export async function backdateStage(db: Db, requestId: string, stage: string, hours = 48): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`set local session_replication_role = replica`);
    await tx.execute(sql`
      update request_stages
         set started_at = now() - make_interval(hours => ${hours}), updated_at = now() - make_interval(hours => ${hours})
       where request_id = ${requestId}::uuid and stage_name = ${stage}`);
  });
}

async function lastRun(db: Db, job: string): Promise<Date | null> {
  const result = (await db.execute(sql`select last_run_at from job_leases where job_name = ${job}`)) as SqlRows<{
    last_run_at: Date | string | null;
  }>;
  const value = result.rows[0]?.last_run_at;
  return value ? new Date(value) : null;
}

async function databaseNow(db: Db): Promise<Date> {
  const result = (await db.execute(sql`select now() as now`)) as SqlRows<{ now: Date | string }>;
  return new Date(result.rows[0]!.now);
}

async function untilRunFinishedAfter(db: Db, job: string, moment: Date, timeoutMs: number): Promise<Date> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await lastRun(db, job);
    if (last && last > moment) return last;
    if (Date.now() > deadline) throw new Error(`${job} did not finish a run after ${moment.toISOString()} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Resolves once `job` has made a whole run that began after this call: the
 * run after the first one to finish from now on (the first may have begun
 * before).
 */
export async function afterAWholeRun(db: Db, job: string, timeoutMs = 20_000): Promise<void> {
  const finished = await untilRunFinishedAfter(db, job, await databaseNow(db), timeoutMs);
  await untilRunFinishedAfter(db, job, finished, timeoutMs);
}

/** The request's stage_stalled events, as stored. */
export async function stallEventsOf(db: Db, requestId: string): Promise<{ stage: string | null; sequence: number }[]> {
  const result = (await db.execute(
    sql`select stage, sequence from request_events where request_id = ${requestId}::uuid and event_type = 'stage_stalled' order by sequence`,
  )) as SqlRows<{ stage: string | null; sequence: number }>;
  return result.rows;
}
