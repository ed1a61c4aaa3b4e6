/**
 * Retention: finished requests (completed, failed, cancelled) untouched for
 * RETENTION_DAYS are deleted with their stages and events, a batch at a
 * time, each batch its own short transaction that locks only the rows it
 * deletes. Nothing in flight is ever a candidate, and nothing finished since
 * the cutoff. docs/retention.md says why deleting in batches, not dropping
 * partitions, and what a client resuming into removed history sees.
 */
import type { PeriodicJob } from './jobs.js';
import { and, asc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { RetentionConfig } from '../config.js';
import type { Queryable } from '../db/client.js';
import { contentRequests, FINISHED_REQUEST, requestEvents, requestStages, retentionWatermark } from '../db/tables.js';
import { inTransaction } from './transaction.js';

/** What a purge removed (or, dry, would remove). */
export type PurgeCounts = { requests: number; stages: number; events: number };

const DAY_MS = 86_400_000;
const NOTHING: PurgeCounts = { requests: 0, stages: 0, events: 0 };

const add = (a: PurgeCounts, b: PurgeCounts): PurgeCounts => ({
  requests: a.requests + b.requests,
  stages: a.stages + b.stages,
  events: a.events + b.events,
});

/** Requests finished before this are removed; null when retention keeps everything (days 0). */
export function retentionCutoff(days: number, now = new Date()): Date | null {
  return days === 0 ? null : new Date(now.getTime() - days * DAY_MS);
}

/**
 * The age test is on updated_at: for a finished request it is when it
 * finished (nothing changes a completed or cancelled request afterwards, and
 * retrying a failed one makes it in flight again). created_at would remove a
 * request that ran for days the moment it finished.
 */
const purgeable = (cutoff: Date) => and(FINISHED_REQUEST, lt(contentRequests.updatedAt, cutoff));

/** What a purge with this cutoff would remove now, without removing anything. */
export async function countPurgeable(db: Queryable, cutoff: Date): Promise<PurgeCounts> {
  const candidates = db.$with('candidates').as(db.select({ id: contentRequests.id }).from(contentRequests).where(purgeable(cutoff)));
  const [row] = await db
    .with(candidates)
    .select({
      requests: sql<number>`(select count(*) from ${candidates})::int`,
      stages: sql<number>`(select count(*) from request_stages s where s.request_id in (select id from ${candidates}))::int`,
      events: sql<number>`(select count(*) from request_events e where e.request_id in (select id from ${candidates}))::int`,
    })
    .from(sql`(select 1) as one`);
  return { requests: Number(row!.requests), stages: Number(row!.stages), events: Number(row!.events) };
}

/**
 * One batch, one transaction: lock up to `batchSize` of the oldest
 * candidates (SKIP LOCKED: a row a writer holds is left for the next run,
 * and the lock re-checks the condition, so a request retried meanwhile is
 * no longer taken), delete their events, stages and rows, and raise the
 * watermark to the highest feed position deleted.
 */
async function purgeBatch(db: Queryable, cutoff: Date, batchSize: number): Promise<PurgeCounts> {
  return inTransaction(db, async (tx) => {
    const doomed = await tx
      .select({ id: contentRequests.id })
      .from(contentRequests)
      .where(purgeable(cutoff))
      .orderBy(asc(contentRequests.updatedAt))
      .limit(batchSize)
      .for('update', { skipLocked: true });
    if (doomed.length === 0) return NOTHING;
    const ids = doomed.map((row) => row.id);
    // Children first: the cascades then find nothing, and each delete is counted.
    const deletedEvents = tx.$with('deleted_events').as(
      tx.delete(requestEvents).where(inArray(requestEvents.requestId, ids)).returning({ position: requestEvents.feedPosition }),
    );
    const [events] = await tx
      .with(deletedEvents)
      .select({
        count: sql<number>`count(*)::int`,
        highest: sql<string | null>`max(${deletedEvents.position})::text`,
      })
      .from(deletedEvents);
    const stages = await tx.delete(requestStages).where(inArray(requestStages.requestId, ids)).returning({ id: requestStages.id });
    const requests = await tx.delete(contentRequests).where(inArray(contentRequests.id, ids)).returning({ id: contentRequests.id });
    if (events?.highest) {
      await tx
        .update(retentionWatermark)
        .set({ purgedThroughPosition: sql`greatest(${retentionWatermark.purgedThroughPosition}, ${events.highest}::bigint)` })
        .where(eq(retentionWatermark.id, true));
    }
    return { requests: requests.length, stages: stages.length, events: Number(events?.count ?? 0) };
  });
}

/**
 * Removes every finished request older than `cutoff`, `batchSize` at a
 * time, until a batch comes back short or `signal` aborts (between batches).
 * After each batch it rests as long as the batch took, so a backlog is worked
 * off at most half the time and the writers keep the other half (the
 * benchmark's retention phase measured writes halved by an unpaced purge on
 * two busy cores). `afterBatch` sees each batch's counts and duration.
 */
export async function purgeFinishedRequests(
  db: Queryable,
  options: {
    cutoff: Date;
    batchSize: number;
    afterBatch?: (batch: PurgeCounts, ms: number) => void;
    signal?: AbortSignal;
    /** false: no rest between batches (for measuring). */
    paced?: boolean;
  },
): Promise<PurgeCounts> {
  let total = NOTHING;
  while (!options.signal?.aborted) {
    const started = performance.now();
    const batch = await purgeBatch(db, options.cutoff, options.batchSize);
    const ms = performance.now() - started;
    if (batch.requests > 0) options.afterBatch?.(batch, ms);
    total = add(total, batch);
    if (batch.requests < options.batchSize) break;
    if (options.paced !== false) await rest(ms, options.signal);
  }
  return total;
}

const rest = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** The highest feed position retention has removed (0: nothing removed yet). */
export async function purgedThroughPosition(db: Queryable): Promise<bigint> {
  const [row] = await db.select({ position: retentionWatermark.purgedThroughPosition }).from(retentionWatermark);
  return row?.position ?? 0n;
}

/**
 * The scheduled purge; with RETENTION_DAYS 0 it removes nothing. `removed`
 * hears each batch's counts (the metric and the log).
 */
export function retentionJob(config: RetentionConfig, removed?: (batch: PurgeCounts) => void): PeriodicJob {
  return {
    name: 'retention',
    intervalMs: config.intervalMs,
    async run(db) {
      const cutoff = retentionCutoff(config.days);
      if (cutoff) await purgeFinishedRequests(db, { cutoff, batchSize: config.batchSize, afterBatch: (batch) => removed?.(batch) });
    },
  };
}
