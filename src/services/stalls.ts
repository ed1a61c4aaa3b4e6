/**
 * Stalled stages (docs/operations.md, "Stalled stages"): a stage running
 * longer than its expected duration times STALL_FACTOR is marked
 * (`request_stages.stalled_at`) and gets one `stage_stalled` event, written by
 * `mark_stalled_stages()` (drizzle/0010) so the live feed carries it like any
 * change. The stage's next progress or status clears the mark (a trigger).
 * Reads start from idx_request_stages_stalled, which holds only marked stages.
 */
import { and, asc, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { Queryable } from '../db/client.js';
import { contentRequests } from '../db/tables.js';
import type { PeriodicJob } from './jobs.js';
import { parseInput } from './validation.js';
import { stalledRequestsScope, type Viewer } from './access.js';
import type { ContentRequest } from './requests.js';

/**
 * Stages marked per statement: each one's request stays locked until the
 * statement commits (a worker's report on it waits that long). At a million
 * requests a mark costs a few milliseconds (bench: `--only stalls`).
 */
export const MARK_BATCH = 50;
/** Statements per run at most; whatever is left waits for the next run. */
const MAX_BATCHES_PER_RUN = 50;

/**
 * The one definition of "stalled", on content_requests: in flight, with a
 * running stage marked stalled (the mark is cleared when the stage's status
 * changes, so a marked stage is a running one).
 */
export const isStalled: SQL = sql`(${contentRequests.status} = any (pipeline_in_flight_statuses()) and ${contentRequests.id} in (
  select s.request_id from request_stages s where s.stalled_at is not null))`;

/** Marks what has stalled since the last check; returns how many stages it marked. */
export async function markStalledStages(db: Queryable, stallFactor: number): Promise<number> {
  let marked = 0;
  for (let batch = 0; batch < MAX_BATCHES_PER_RUN; batch++) {
    // Both drivers answer with { rows }; Queryable's type cannot say which.
    const result = (await db.execute(
      sql`select mark_stalled_stages(${stallFactor}::numeric, ${MARK_BATCH}) as marked`,
    )) as { rows: { marked: number }[] };
    const count = Number(result.rows[0]?.marked ?? 0);
    marked += count;
    if (count < MARK_BATCH) break;
  }
  return marked;
}

export function stallCheckJob(config: { stallFactor: number; intervalMs: number }): PeriodicJob {
  return {
    name: 'stall-check',
    intervalMs: config.intervalMs,
    run: async (db) => {
      await markStalledStages(db, config.stallFactor);
    },
  };
}

/** Requests in flight with a stalled stage, across all organizations (the gauge). */
export async function countStalledRequests(db: Queryable): Promise<number> {
  const [row] = await db.select({ count: sql<number>`count(*)::int` }).from(contentRequests).where(isStalled);
  return row?.count ?? 0;
}

const firstInput = z.number().int().min(1, 'must be between 1 and 1000').max(1_000, 'must be between 1 and 1000').nullish();

/** Stalled requests in the viewer's reach, oldest first. */
export async function listStalledRequests(
  db: Queryable,
  viewer: Viewer,
  options: { first?: number | null } = {},
): Promise<ContentRequest[]> {
  const first = parseInput(firstInput, options.first, 'first') ?? 100;
  return db
    .select()
    .from(contentRequests)
    .where(and(stalledRequestsScope(viewer), isStalled))
    .orderBy(asc(contentRequests.createdAt), asc(contentRequests.id))
    .limit(first);
}
