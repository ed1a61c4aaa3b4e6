/**
 * The pipeline as the database defines it: its stages, in order (a migration
 * adds one; operators tune only their weights and expected durations), and
 * the sets of request statuses. Code names only the lifecycle's statuses;
 * a stage's status is whatever its definition row says.
 */
import { asc, sql, type SQL } from 'drizzle-orm';
import type { Queryable } from '../db/client.js';
import { pipelineStageDefinitions, type RequestStatus } from '../db/tables.js';

export type { RequestStatus } from '../db/tables.js';
export type PipelineStage = typeof pipelineStageDefinitions.$inferSelect;

/** Nothing follows these (a failed request may be retried): a live stream of the request ends there. */
export const STREAM_ENDING_STATUSES: ReadonlySet<RequestStatus> = new Set(['completed', 'cancelled']);

/** A stage report on a request in one of these is refused: it is over, or failed until retried. */
export const REPORT_REFUSING_STATUSES: ReadonlySet<RequestStatus> = new Set(['completed', 'failed', 'cancelled']);

// Rows that change only by a migration or an operator's hand: a short-lived
// cache keeps them off every stage report without making an edit wait for a restart.
const CACHE_TTL_MS = 30_000;

/** A per-database read kept CACHE_TTL_MS; `forget(db)` drops it after a change this process made. */
export function cachedPerDatabase<T>(
  load: (db: Queryable) => Promise<T>,
): ((db: Queryable) => Promise<T>) & { forget(db: Queryable): void } {
  const cache = new WeakMap<Queryable, { loadedAt: number; value: Promise<T> }>();
  const read = (db: Queryable) => {
    const cached = cache.get(db);
    if (cached && Date.now() - cached.loadedAt < CACHE_TTL_MS) return cached.value;
    const entry = { loadedAt: Date.now(), value: load(db) };
    cache.set(db, entry);
    entry.value.catch(() => cache.delete(db));
    return entry.value;
  };
  return Object.assign(read, { forget: (db: Queryable) => void cache.delete(db) });
}

/** The stages in pipeline order. */
export const listPipelineStages = cachedPerDatabase(
  async (db): Promise<PipelineStage[]> =>
    db.select().from(pipelineStageDefinitions).orderBy(asc(pipelineStageDefinitions.stageOrder)),
);

// One status a row, in the array's order.
const statusesIn = (db: Queryable, array: SQL) =>
  db
    .select({ status: sql<RequestStatus>`s.status::text` })
    .from(sql`unnest(${array}) with ordinality as s(status, position)`)
    .orderBy(sql`s.position`)
    .then((rows) => rows.map((row) => row.status));

/** pending, then each stage's status in stage order: the database's pipeline_in_flight_statuses() (drizzle/0009). */
export const inFlightStatuses = cachedPerDatabase((db) => statusesIn(db, sql`pipeline_in_flight_statuses()`));

/** Every value of content_request_status, in the enum's order (lifecycle and stages): read at start-up. */
export function requestStatuses(db: Queryable): Promise<RequestStatus[]> {
  return statusesIn(db, sql`enum_range(null::content_request_status)`);
}
