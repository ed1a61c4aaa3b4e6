/**
 * When a request should be done. Each stage's duration is estimated by the
 * median of its recently completed runs, for everyone and for each
 * organization with enough history of that stage; a job recomputes those
 * medians into stage_duration_estimates every few minutes, and a read takes
 * them from there (cached in the process), never from the history itself.
 * docs/eta.md says why the median and how the running stage counts.
 */
import type { PeriodicJob } from './jobs.js';
import { sql } from 'drizzle-orm';
import type { Queryable } from '../db/client.js';
import { stageDurationEstimates } from '../db/tables.js';
import { cachedPerDatabase, listPipelineStages, type PipelineStage, type RequestStatus } from './pipeline.js';
import type { LiveEvent } from './live-events.js';
import { stagesOfRequests, type RequestStage } from './stages.js';

/** An organization's own median for a stage needs this many completed runs of it in the window; below, everyone's is used. */
export const ORGANIZATION_MIN_SAMPLES = 20;

/** A running stage is never estimated to end sooner than this: it has not ended yet. */
const MINIMUM_SECONDS_REMAINING = 5;

/** No ETA once a request is over (a failed one may be retried: it gets one again then). */
const FINISHED: ReadonlySet<RequestStatus> = new Set(['completed', 'failed', 'cancelled']);

export const hasEta = (status: RequestStatus): boolean => !FINISHED.has(status);

export type Eta = { completionAt: Date; secondsRemaining: number };

/** Seconds per stage name: everyone's medians, and each organization's where it has enough history. */
export type StageEstimates = {
  everyone: ReadonlyMap<string, number>;
  byOrganization: ReadonlyMap<string, ReadonlyMap<string, number>>;
};

export type StageEstimatesOptions = { refreshIntervalMs: number; windowDays: number };

/** The job that keeps stage_duration_estimates current. */
export function stageEstimatesJob(options: StageEstimatesOptions): PeriodicJob {
  return {
    name: 'stage-estimates',
    intervalMs: options.refreshIntervalMs,
    run: (db) => refreshStageEstimates(db, options.windowDays),
  };
}

/**
 * Recomputes stage_duration_estimates from the stages completed in the last
 * `windowDays` days, in one statement: a row per stage for everyone, one per
 * (stage, organization) with ORGANIZATION_MIN_SAMPLES runs or more, and no
 * other rows. Idempotent.
 */
export async function refreshStageEstimates(db: Queryable, windowDays: number): Promise<void> {
  await db.execute(sql`
    with recent as (
      select s.stage_name, r.organization_id, s.duration_seconds
        from request_stages s
        join content_requests r on r.id = s.request_id
       where s.status = 'completed'
         and s.completed_at >= now() - make_interval(days => ${windowDays}::int)
         and s.duration_seconds is not null
    ),
    medians as (
      select stage_name, null::varchar as organization_id, count(*)::int as sample_count,
             percentile_cont(0.5) within group (order by duration_seconds) as median_seconds
        from recent
       group by stage_name
      union all
      select stage_name, organization_id, count(*)::int,
             percentile_cont(0.5) within group (order by duration_seconds)
        from recent
       where organization_id is not null
       group by stage_name, organization_id
      having count(*) >= ${ORGANIZATION_MIN_SAMPLES}::int
    ),
    kept as (
      insert into stage_duration_estimates as e (stage_name, organization_id, sample_count, median_seconds, refreshed_at)
      select stage_name, organization_id, sample_count, median_seconds, now() from medians
      on conflict (stage_name, organization_id) do update set
        sample_count = excluded.sample_count,
        median_seconds = excluded.median_seconds,
        refreshed_at = excluded.refreshed_at
      returning e.stage_name, e.organization_id
    )
    -- An organization that fell below the threshold (or a stage with no recent run) goes back to the fallback.
    delete from stage_duration_estimates e
     where not exists (
       select 1 from kept k
        where k.stage_name = e.stage_name and k.organization_id is not distinct from e.organization_id
     )
  `);
  // This process sees the new figures at once; other replicas within the cache's lifetime.
  loadStageEstimates.forget(db);
}

/** The estimates table, as lookups (one small read, cached per database). */
export const loadStageEstimates = cachedPerDatabase(async (db): Promise<StageEstimates> => {
  const rows = await db
    .select({
      stageName: stageDurationEstimates.stageName,
      organizationId: stageDurationEstimates.organizationId,
      medianSeconds: stageDurationEstimates.medianSeconds,
    })
    .from(stageDurationEstimates);
  const everyone = new Map<string, number>();
  const byOrganization = new Map<string, Map<string, number>>();
  for (const row of rows) {
    if (row.organizationId === null) everyone.set(row.stageName, row.medianSeconds);
    else {
      const own = byOrganization.get(row.organizationId) ?? new Map<string, number>();
      own.set(row.stageName, row.medianSeconds);
      byOrganization.set(row.organizationId, own);
    }
  }
  return { everyone, byOrganization };
});

/** What the estimate needs of a request: its status, organization and stage rows. */
export type EtaSubject = {
  status: RequestStatus;
  organizationId: string | null;
  stages: readonly Pick<RequestStage, 'stageName' | 'status' | 'progressPercentage' | 'startedAt'>[];
};

type StageRow = EtaSubject['stages'][number];

/** A stage that costs no more time. */
const isDone = (stage: StageRow | undefined) => stage?.status === 'completed' || stage?.status === 'skipped';

/**
 * The request's ETA now; null once it is over, by its status or by its
 * stages (a live update's status is the event's, and the request may have
 * finished since).
 */
export async function estimateCompletion(db: Queryable, subject: EtaSubject, now = new Date()): Promise<Eta | null> {
  if (!hasEta(subject.status)) return null;
  const [pipeline, estimates] = await Promise.all([listPipelineStages(db), loadStageEstimates(db)]);
  const done = new Set(subject.stages.filter(isDone).map((stage) => stage.stageName));
  if (pipeline.every((stage) => done.has(stage.stageName))) return null;
  const seconds = secondsRemaining(subject, pipeline, estimates, now);
  return { completionAt: new Date(now.getTime() + seconds * 1000), secondsRemaining: Math.ceil(seconds) };
}

/**
 * The seconds left: every pipeline stage not yet completed or skipped, at its
 * estimate, except a running one, at what is left of it. Pure, so the
 * benchmark measures exactly this.
 */
export function secondsRemaining(
  subject: Omit<EtaSubject, 'status'>,
  pipeline: readonly Pick<PipelineStage, 'stageName' | 'expectedDurationSeconds'>[],
  estimates: StageEstimates,
  now: Date,
): number {
  const own = subject.organizationId === null ? undefined : estimates.byOrganization.get(subject.organizationId);
  const rows = new Map(subject.stages.map((stage) => [stage.stageName, stage]));
  let total = 0;
  for (const stage of pipeline) {
    const estimate = own?.get(stage.stageName) ?? estimates.everyone.get(stage.stageName) ?? stage.expectedDurationSeconds;
    const row = rows.get(stage.stageName);
    if (isDone(row)) continue;
    if (row?.status === 'in_progress' && row.startedAt) {
      total += runningStageRemaining(estimate, (now.getTime() - row.startedAt.getTime()) / 1000, row.progressPercentage / 100);
    } else {
      total += estimate;
    }
  }
  return total;
}

/**
 * What is left of a running stage. Two guesses: its estimate minus the time
 * it has run, and the pace of its own progress reports (elapsed × left / done).
 * The further its reports say it is, the more their pace counts: at 0 % only
 * the estimate does, at 80 % mostly the pace.
 */
function runningStageRemaining(estimateSeconds: number, elapsedSeconds: number, progress: number): number {
  const elapsed = Math.max(0, elapsedSeconds);
  const byEstimate = estimateSeconds - elapsed;
  const byPace = progress > 0 ? (elapsed * (1 - progress)) / progress : byEstimate;
  const blended = progress * byPace + (1 - progress) * byEstimate;
  return Math.max(MINIMUM_SECONDS_REMAINING, blended);
}

// Every subscriber of a request gets each of its events: the ETA for the
// request's latest event is worked out once per process and shared, for a
// moment, by all of them. An older event (a replay) is worked out afresh.
const EVENT_ETA_TTL_MS = 2_000;
const EVENT_ETA_MAX_REQUESTS = 10_000;
type SharedEta = { position: bigint; at: number; eta: Promise<Eta | null> };
const eventEtas = new WeakMap<Queryable, Map<string, SharedEta>>();

/** The ETA a live update for `event` carries: as of its delivery, shared by every subscriber it goes to. */
export function eventEta(db: Queryable, event: Pick<LiveEvent, 'requestId' | 'position' | 'newStatus' | 'organizationId'>): Promise<Eta | null> {
  const cache = eventEtas.get(db) ?? new Map<string, SharedEta>();
  eventEtas.set(db, cache);
  const now = Date.now();
  const cached = cache.get(event.requestId);
  if (cached && cached.position === event.position && now - cached.at < EVENT_ETA_TTL_MS) return cached.eta;
  // A finished request's event reads nothing, and is remembered too: it makes the events before it old.
  const eta = hasEta(event.newStatus)
    ? stagesOfRequests(db, [event.requestId]).then((stages) =>
        estimateCompletion(db, { status: event.newStatus, organizationId: event.organizationId, stages: stages.get(event.requestId) ?? [] }),
      )
    : Promise.resolve(null);
  if (cached && cached.position > event.position && now - cached.at < EVENT_ETA_TTL_MS) return eta;
  // Bounded: entries go in time order (re-inserted at the end), so the oldest are first.
  cache.delete(event.requestId);
  for (const [requestId, entry] of cache) {
    if (cache.size < EVENT_ETA_MAX_REQUESTS && now - entry.at < EVENT_ETA_TTL_MS) break;
    cache.delete(requestId);
  }
  const entry = { position: event.position, at: now, eta };
  cache.set(event.requestId, entry);
  eta.catch(() => cache.get(event.requestId) === entry && cache.delete(event.requestId));
  return eta;
}
