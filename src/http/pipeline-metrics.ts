/**
 * The pipeline's Prometheus metrics: what the alert rules in
 * ops/prometheus/alerts.yml read (docs/operations.md, "Metrics and alerts").
 *
 * Counters and histograms count the event log as the hub delivers it: every
 * committed change exactly once in each process, whoever wrote it (the API, a
 * worker's raw SQL, a trigger), so every replica reports the same totals and
 * rules aggregate across instances with max, never sum. The gauge of requests
 * by status is read from the database at scrape time, at most once every
 * `gaugeMaxAgeMs`, and is also the same on every replica.
 *
 * Every label value comes from the database's own lists (the status enum, the
 * stage definitions) read at start-up; anything else is counted as "other".
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Queryable } from '../db/client.js';
import type { EventHub } from '../live/hub.js';
import type { Logger } from '../logger.js';
import { completedRequestDurations, countRequestsByStatus, stageDurations, type StageKey } from '../services/outcome-facts.js';
import type { LiveEvent } from '../services/live-events.js';

const OTHER_LABEL = 'other';
/** Durations looked up with one statement, at most. */
const LOOKUP_BATCH = 500;
/** Durations waiting to be looked up, at most; beyond it they are dropped (and counted). */
const MAX_PENDING = 10_000;
const FLUSH_INTERVAL_MS = 2_000;
// From a few seconds (validation) to an hour (a video), in seconds.
const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1_200, 1_800, 3_600];

export type PipelineMetricsOptions = {
  db: Queryable;
  hub: EventHub;
  logger: Logger;
  /** Every content_request_status value. */
  statuses: readonly string[];
  /** Every stage name of pipeline_stage_definitions. */
  stages: readonly string[];
  gaugeMaxAgeMs: number;
};

/** Registers the metrics and starts counting; the returned function stops it (after the lookups in flight). */
export function registerPipelineMetrics(registry: Registry, options: PipelineMetricsOptions): () => Promise<void> {
  const { db, hub, logger } = options;
  const statusLabel = bounded(options.statuses);
  const stageLabel = bounded(options.stages);

  const transitions = new Counter({
    name: 'tracker_request_status_transitions_total',
    help: 'Requests that entered each status (creation enters pending), counted from the event log; the same on every replica',
    labelNames: ['status'],
    registers: [registry],
  });
  // Every series from the start, so a rate over a status nothing has entered yet is 0, not absent.
  for (const status of [...options.statuses, OTHER_LABEL]) transitions.labels(status).inc(0);
  const stageDuration = new Histogram({
    name: 'tracker_stage_duration_seconds',
    help: 'Durations of completed pipeline stages (request_stages.duration_seconds), by stage',
    labelNames: ['stage'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  for (const stage of options.stages) stageDuration.zero({ stage });
  const requestDuration = new Histogram({
    name: 'tracker_request_duration_seconds',
    help: 'Seconds from creation to completion of completed requests',
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'tracker_duration_lookups_dropped_total',
    help: 'Completed stages or requests whose duration was not observed because too many were waiting to be looked up',
    registers: [registry],
  });

  let counts: { at: number; value: Promise<{ status: string; count: number }[]> } | undefined;
  new Gauge({
    name: 'tracker_requests',
    help: 'Requests in each status now, read from the database (at most once every METRICS_GAUGE_MAX_AGE_SECONDS); the same on every replica',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      if (!counts || Date.now() - counts.at >= options.gaugeMaxAgeMs) {
        // One read at a time however many scrapes arrive; a failed read is tried again on the next scrape.
        const value = countRequestsByStatus(db);
        counts = { at: Date.now(), value };
        value.catch(() => (counts = undefined));
      }
      try {
        const rows = await counts.value;
        this.reset();
        for (const status of options.statuses) this.labels(status).set(0);
        for (const row of rows) this.labels(statusLabel(row.status)).inc(row.count);
      } catch (error) {
        logger.warn({ err: error }, 'could not count requests by status for /metrics');
      }
    },
  });

  // Durations are read back in batches, off the hub's delivery path.
  let pendingStages: StageKey[] = [];
  let pendingRequests: string[] = [];
  const unsubscribe = hub.observe((event: LiveEvent) => {
    if (event.newStatus !== event.oldStatus) transitions.labels(statusLabel(event.newStatus)).inc();
    const requestCompleted = event.newStatus === 'completed' && event.oldStatus !== 'completed';
    // Completing the last stage completes the request: that one event is both.
    const stageCompleted = (event.eventType === 'stage_completed' || requestCompleted) && event.stage !== null;
    if (!requestCompleted && !stageCompleted) return;
    if (pendingStages.length + pendingRequests.length >= MAX_PENDING) {
      dropped.inc();
      return;
    }
    if (stageCompleted) pendingStages.push({ requestId: event.requestId, stage: event.stage! });
    if (requestCompleted) pendingRequests.push(event.requestId);
  });
  let flushing: Promise<void> = Promise.resolve();
  const flush = async () => {
    const stages = pendingStages;
    const requests = pendingRequests;
    pendingStages = [];
    pendingRequests = [];
    try {
      for (let i = 0; i < stages.length; i += LOOKUP_BATCH) {
        for (const { stage, seconds } of await stageDurations(db, stages.slice(i, i + LOOKUP_BATCH))) {
          stageDuration.labels(stageLabel(stage)).observe(seconds);
        }
      }
      for (let i = 0; i < requests.length; i += LOOKUP_BATCH) {
        for (const seconds of await completedRequestDurations(db, requests.slice(i, i + LOOKUP_BATCH))) requestDuration.observe(seconds);
      }
    } catch (error) {
      // Lost for the histogram, not for the counters: a duration is a sample, and the next batch carries on.
      logger.warn({ err: error }, 'could not read stage and request durations for /metrics');
    }
  };
  const timer = setInterval(() => {
    flushing = flushing.then(flush);
  }, FLUSH_INTERVAL_MS).unref();

  return async () => {
    clearInterval(timer);
    unsubscribe();
    await flushing;
  };
}

/** A label value from a known list, or "other". */
function bounded(known: readonly string[]): (value: string) => string {
  const set = new Set(known);
  return (value) => (set.has(value) ? value : OTHER_LABEL);
}
