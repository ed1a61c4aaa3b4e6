/**
 * Reads of a request's stage rows and event log, and the stage weights, for
 * the tests of what the triggers on request_stages do.
 */
import { and, asc, eq, sql } from 'drizzle-orm';
import { expect } from 'vitest';
import type { Db } from '../../src/db/client.js';
import { requestEvents, requestStages } from '../../src/db/tables.js';

export async function readStage(db: Db, requestId: string, stageName: string) {
  const [row] = await db
    .select()
    .from(requestStages)
    .where(and(eq(requestStages.requestId, requestId), eq(requestStages.stageName, stageName)));
  return row!;
}

/** The request's events, in sequence order. */
export const eventsOf = (db: Db, requestId: string) =>
  db.select().from(requestEvents).where(eq(requestEvents.requestId, requestId)).orderBy(asc(requestEvents.sequence));

/** What calculate_request_progress() says, independently of the stored column. */
export async function calculatedProgress(db: Db, requestId: string): Promise<number> {
  const result = await db.execute<{ p: number }>(sql`select calculate_request_progress(${requestId}::uuid) as p`);
  return result.rows[0]!.p;
}

/**
 * The weights in pipeline_stage_definitions, read at run time so a retune
 * shows up as a clear failure, not a silent pass.
 */
export async function stageWeights(db: Db): Promise<Record<string, number>> {
  const result = await db.execute<{ stage_name: string; progress_weight: number }>(
    sql`select stage_name, progress_weight from pipeline_stage_definitions`,
  );
  const weights = Object.fromEntries(result.rows.map((r) => [r.stage_name, r.progress_weight]));
  // The arithmetic of the tests assumes weights summing to 100 (no normalisation).
  expect(Object.values(weights).reduce((a, b) => a + b, 0)).toBe(100);
  return weights;
}
