/**
 * The facts behind the pipeline's Prometheus metrics (src/http/pipeline-metrics.ts),
 * each read with one bounded statement: requests by status, and the durations
 * of stages and requests that just finished.
 */
import { and, eq, inArray, isNotNull, or, sql } from 'drizzle-orm';
import type { Queryable } from '../db/client.js';
import { contentRequests, requestStages } from '../db/tables.js';
import type { RequestStatus } from './pipeline.js';

/** How many requests are in each status (statuses with none are absent). */
export async function countRequestsByStatus(db: Queryable): Promise<{ status: RequestStatus; count: number }[]> {
  // Answered from idx_content_requests_status (an index-only scan once the table is vacuumed).
  return db
    .select({ status: sql<RequestStatus>`${contentRequests.status}::text`, count: sql<number>`count(*)::int` })
    .from(contentRequests)
    .groupBy(contentRequests.status);
}

export type StageKey = { requestId: string; stage: string };

/** The recorded durations of these (request, stage) pairs, read by their unique index; a stage without one is left out. */
export async function stageDurations(db: Queryable, keys: readonly StageKey[]): Promise<{ stage: string; seconds: number }[]> {
  if (keys.length === 0) return [];
  const rows = await db
    .select({ stage: requestStages.stageName, seconds: requestStages.durationSeconds })
    .from(requestStages)
    .where(
      and(
        or(...keys.map((key) => and(eq(requestStages.requestId, key.requestId), eq(requestStages.stageName, key.stage)))),
        isNotNull(requestStages.durationSeconds),
      ),
    );
  return rows.map((row) => ({ stage: row.stage, seconds: Number(row.seconds) }));
}

/** Seconds from creation to completion of these completed requests. */
export async function completedRequestDurations(db: Queryable, requestIds: readonly string[]): Promise<number[]> {
  if (requestIds.length === 0) return [];
  const rows = await db
    .select({ seconds: sql<number>`extract(epoch from ${contentRequests.completedAt} - ${contentRequests.createdAt})::float8` })
    .from(contentRequests)
    .where(and(inArray(contentRequests.id, [...requestIds]), isNotNull(contentRequests.completedAt)));
  return rows.map((row) => Number(row.seconds));
}
