/**
 * What operators watch: requests in flight (the active_requests_dashboard
 * view) and hourly metrics (request_metrics, filled by the rollup below).
 */
import { and, asc, desc, eq, gte, lt, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Queryable } from '../db/client.js';
import { requestMetrics } from '../db/tables.js';
import { activeRequestsDashboard } from '../db/views.js';
import { badInput } from './errors.js';
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
 * Recomputes the hourly buckets of requests created since `since` (rounded
 * down to the hour), per organization: counts by outcome, completion time
 * (average and p95) and failures by stage. Idempotent; run it every few minutes.
 */
export async function rollupRequestMetrics(db: Queryable, since: Date): Promise<void> {
  const hourStart = new Date(Math.floor(since.getTime() / HOUR_MS) * HOUR_MS);
  await db.execute(sql`
    with requests as (
      select organization_id, date_trunc('hour', created_at, 'UTC') as metric_hour, status, error_stage,
             extract(epoch from completed_at - created_at) as duration
        from content_requests
       where created_at >= ${hourStart.toISOString()}::timestamptz
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
  `);
}

/** The rollup as a periodic job: the current and previous hour, since an outcome can land an hour after its request was created. */
export function metricsRollupJob(intervalMs: number): PeriodicJob {
  return {
    name: 'metrics-rollup',
    intervalMs,
    run: (db) => rollupRequestMetrics(db, new Date(Date.now() - 2 * HOUR_MS)),
  };
}
