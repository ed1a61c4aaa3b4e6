/**
 * What operators watch: requests in flight (the active_requests_dashboard
 * view) and hourly metrics (request_metrics, filled by the rollup below).
 */
import { and, asc, desc, eq, gte, lt, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { Queryable } from '../db/client.js';
import { requestMetrics } from '../db/tables.js';
import { activeRequestsDashboard } from '../db/views.js';
import { badInput } from './errors.js';
import { inTransaction } from './transaction.js';
import { optionalText, parseInput } from './validation.js';
import { metricsOrganization, requestScope, type Viewer } from './access.js';
import type { PeriodicJob } from './jobs.js';

export type ActiveRequest = typeof activeRequestsDashboard.$inferSelect;

export async function listActiveRequests(
  db: Queryable,
  viewer: Viewer,
  options: { overdueOnly?: boolean | null; first?: number | null } = {},
): Promise<ActiveRequest[]> {
  const first = options.first ?? 100;
  if (!Number.isInteger(first) || first < 1 || first > 1_000) throw badInput('first', 'must be between 1 and 1000');
  return db
    .select()
    .from(activeRequestsDashboard)
    .where(
      and(
        requestScope(viewer, activeRequestsDashboard),
        options.overdueOnly ? eq(activeRequestsDashboard.isOverdue, true) : undefined,
      ),
    )
    .orderBy(desc(activeRequestsDashboard.isOverdue), asc(activeRequestsDashboard.createdAt))
    .limit(first);
}

export type MetricsBucket = typeof requestMetrics.$inferSelect & {
  successRate: number | null;
  failureRate: number | null;
};

const HOUR_MS = 3_600_000;
const MAX_RANGE_DAYS = 93;

const metricsInput = z.object({
  organizationId: optionalText(100),
  from: z.date().nullish(),
  to: z.date().nullish(),
});

/** Hourly buckets in [from, to), oldest first; the last 24 hours by default. */
export async function listRequestMetrics(
  db: Queryable,
  viewer: Viewer,
  input: z.input<typeof metricsInput>,
): Promise<MetricsBucket[]> {
  const args = parseInput(metricsInput, input);
  const organizationId = metricsOrganization(viewer, args.organizationId ?? null);
  const to = args.to ?? new Date();
  const from = args.from ?? new Date(to.getTime() - 24 * HOUR_MS);
  if (from >= to) throw badInput('from', 'must be before to');
  if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * 24 * HOUR_MS) {
    throw badInput('to', `the range may span at most ${MAX_RANGE_DAYS} days`);
  }
  const rows = await db
    .select()
    .from(requestMetrics)
    .where(
      and(
        organizationId ? eq(requestMetrics.organizationId, organizationId) : undefined,
        gte(requestMetrics.metricHour, from),
        lt(requestMetrics.metricHour, to),
      ),
    )
    .orderBy(asc(requestMetrics.metricHour), asc(requestMetrics.organizationId));
  const rate = (part: number, total: number) => (total === 0 ? null : Math.round((10_000 * part) / total) / 100);
  return rows.map((row) => ({
    ...row,
    successRate: rate(row.completedRequests, row.totalRequests),
    failureRate: rate(row.failedRequests, row.totalRequests),
  }));
}

/**
 * What a bucket means: the requests *created* in that hour (per organization),
 * with each one's outcome as it stands now. An outcome that lands hours later
 * (created at 09:00, failed at 14:00) moves the 09:00 bucket, so a bucket's
 * rates compare like with like and never exceed 100 %.
 */
const METRICS_ROLLUP_CURSOR = 'request_metrics';
/** Events one incremental run reads at most; the rest wait for the next run. */
const ROLLUP_MAX_EVENTS_PER_RUN = 100_000;
/** The longest range one recompute (a backfill) may cover. */
export const RECOMPUTE_MAX_DAYS = 366;
const FINISHED = sql`('completed', 'failed', 'cancelled')`;
// The planner overestimates the rows of the hour ranges and would spend a second or more
// compiling the recompute (JIT) to read a few thousand rows (measured at a million requests).
const NO_JIT = sql`set local jit = off`;

/**
 * The incremental rollup: recomputes the buckets of every creation hour with
 * a request that was created, finished or retried since the last run, found
 * through the event log's commit order (request_events.feed_position), not
 * by scanning requests. Buckets and cursor move in one transaction, so a run
 * that fails is simply done again next time. Returns the hours recomputed.
 */
export async function rollupRequestMetrics(db: Queryable): Promise<number> {
  return inTransaction(db, async (tx) => {
    await tx.execute(NO_JIT);
    const [state] = await rowsOf<{ from_position: string; to_position: string }>(tx, sql`
      with cursor as (
        select coalesce(
          (select feed_position from event_log_cursors where name = ${METRICS_ROLLUP_CURSOR} for update),
          -- The first run starts with the events of the last two hours (a backfill covers older ones).
          (select min(feed_position) - 1 from request_events where created_at >= now() - interval '2 hours'),
          (select max(feed_position) from request_events),
          0) as position
      )
      select position::text as from_position,
             least(position + ${ROLLUP_MAX_EVENTS_PER_RUN},
                   coalesce((select max(feed_position) from request_events), 0))::text as to_position
        from cursor
    `);
    const from = BigInt(state!.from_position);
    const to = BigInt(state!.to_position);
    // Nothing new: nothing to write (without a cursor yet, the next run starts the same way).
    if (to <= from) return 0;
    const hours = await recomputeHours(
      tx,
      // One primary-key lookup per request (a join would let the planner scan content_requests whole).
      sql`select distinct (select date_trunc('hour', r.created_at, 'UTC') from content_requests r where r.id = touched.request_id) as metric_hour
            from (select distinct e.request_id
                    from request_events e
                   where e.feed_position > ${from.toString()}::bigint and e.feed_position <= ${to.toString()}::bigint
                     and (e.event_type = 'created' or e.new_status in ${FINISHED} or e.old_status in ${FINISHED})) touched`,
    );
    await tx.execute(sql`
      insert into event_log_cursors (name, feed_position) values (${METRICS_ROLLUP_CURSOR}, ${to.toString()}::bigint)
      on conflict (name) do update set feed_position = greatest(event_log_cursors.feed_position, excluded.feed_position)
    `);
    return hours;
  });
}

/**
 * Recomputes every creation hour in [from, to) (`from` rounded down and `to`
 * rounded up to the hour): a backfill, or a repair after requests were edited
 * by hand. Idempotent. Returns the hours that had requests.
 */
export async function recomputeRequestMetrics(db: Queryable, range: { from: Date; to: Date }): Promise<number> {
  const from = Math.floor(range.from.getTime() / HOUR_MS) * HOUR_MS;
  const to = Math.ceil(range.to.getTime() / HOUR_MS) * HOUR_MS;
  if (!Number.isFinite(from) || !Number.isFinite(to)) throw badInput('from', 'must be a valid time');
  if (from >= to) throw badInput('from', 'must be before to');
  if (to - from > RECOMPUTE_MAX_DAYS * 24 * HOUR_MS) throw badInput('to', `the range may span at most ${RECOMPUTE_MAX_DAYS} days`);
  return inTransaction(db, async (tx) => {
    await tx.execute(NO_JIT);
    return recomputeHours(
      tx,
      sql`select generate_series(${new Date(from).toISOString()}::timestamptz, ${new Date(to - HOUR_MS).toISOString()}::timestamptz, interval '1 hour') as metric_hour`,
    );
  });
}

/**
 * Upserts the (organization, hour) buckets of the creation hours that `hours`
 * (a query with one timestamptz column, metric_hour) selects: counts by
 * outcome, completion time (average and p95) and failures by stage. Each hour
 * is read through idx_content_requests_created. A bucket whose requests are
 * all gone (purged by retention) keeps its last figures. Returns the hours
 * that had requests.
 */
async function recomputeHours(db: Queryable, hours: SQL): Promise<number> {
  const result = await rowsOf<{ metric_hour: Date | string }>(db, sql`
    with hours as (${hours}),
    requests as (
      select r.organization_id, h.metric_hour, r.status, r.error_stage,
             extract(epoch from r.completed_at - r.created_at) as duration
        from hours h
        join content_requests r on r.created_at >= h.metric_hour and r.created_at < h.metric_hour + interval '1 hour'
    ),
    failures as (
      select organization_id, metric_hour, jsonb_object_agg(coalesce(error_stage, 'unknown'), n) as error_breakdown
        from (select organization_id, metric_hour, error_stage, count(*) as n
                from requests where status = 'failed' group by 1, 2, 3) by_stage
       group by 1, 2
    )
    insert into request_metrics as m
      (organization_id, metric_hour, total_requests, completed_requests, failed_requests,
       cancelled_requests, avg_duration_seconds, p95_duration_seconds, error_breakdown)
    select r.organization_id, r.metric_hour, count(*),
           count(*) filter (where r.status = 'completed'),
           count(*) filter (where r.status = 'failed'),
           count(*) filter (where r.status = 'cancelled'),
           avg(r.duration) filter (where r.status = 'completed'),
           percentile_cont(0.95) within group (order by r.duration) filter (where r.status = 'completed'),
           coalesce(min(f.error_breakdown::text)::jsonb, '{}'::jsonb)
      from requests r
      left join failures f
        on f.organization_id is not distinct from r.organization_id and f.metric_hour = r.metric_hour
     group by r.organization_id, r.metric_hour
    on conflict (organization_id, metric_hour) do update set
      total_requests = excluded.total_requests,
      completed_requests = excluded.completed_requests,
      failed_requests = excluded.failed_requests,
      cancelled_requests = excluded.cancelled_requests,
      avg_duration_seconds = excluded.avg_duration_seconds,
      p95_duration_seconds = excluded.p95_duration_seconds,
      error_breakdown = excluded.error_breakdown
    returning metric_hour
  `);
  return new Set(result.map((row) => new Date(row.metric_hour).getTime())).size;
}

/** A raw statement's rows: both drivers answer execute() with { rows }. */
async function rowsOf<T>(db: Queryable, statement: SQL): Promise<T[]> {
  const result = (await db.execute(statement)) as unknown as { rows: T[] };
  return result.rows;
}

/** The incremental rollup (rollupRequestMetrics) as a periodic job. */
export function metricsRollupJob(intervalMs: number): PeriodicJob {
  return {
    name: 'metrics-rollup',
    intervalMs,
    run: async (db) => {
      await rollupRequestMetrics(db);
    },
  };
}
