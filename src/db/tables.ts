/**
 * The data model, as specified by the original system's migration report
 * (docs/data-model.md): table, column, index and constraint names are the seed's.
 *
 * drizzle-kit generates the table migrations from this file. Functions,
 * triggers, views and seed rows live in custom SQL migrations under drizzle/,
 * and so does any index that must be built CONCURRENTLY on a large live table
 * (see the README).
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  foreignKey,
  index,
  integer,
  jsonb,
  numeric,
  pgEnum,
  pgTable,
  text,
  timestamp,
  unique,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core';

/**
 * The lifecycle's statuses (pending, completed, failed, cancelled) and one per
 * pipeline stage: these are the seed's, and a migration that adds a stage adds
 * its value to the database's enum, not here. Read the statuses from the
 * database (services/pipeline.ts); this list only types the columns.
 */
export const contentRequestStatus = pgEnum('content_request_status', [
  'pending',
  'validating',
  'retrieving',
  'generating_script',
  'generating_video',
  'processing_video',
  'completed',
  'failed',
  'cancelled',
]);

/** A content_request_status: one the lifecycle names, or a stage's, which the database defines. */
export type RequestStatus = 'pending' | 'completed' | 'failed' | 'cancelled' | (string & {});

export const contentStageStatus = pgEnum('content_stage_status', [
  'pending',
  'in_progress',
  'completed',
  'failed',
  'skipped',
]);

/** What a `request_events` row records; chosen by the `log_status_change()` trigger. */
export const requestEventType = pgEnum('request_event_type', [
  'created',
  'status_change',
  'stage_started',
  'stage_completed',
  'progress',
  'completed',
  'failure',
  'retry',
  'cancel',
  // Written by the stall check (services/stalls.ts), not by log_status_change().
  'stage_stalled',
]);

export const eventSeverity = pgEnum('event_severity', ['debug', 'info', 'warning', 'error']);

export const userRoles = ['student', 'org_admin', 'admin', 'worker'] as const;
/** The list as SQL literals, for users_role_check: the constraint follows the list (a new role is a new migration). */
const roleLiterals = sql.raw(userRoles.map((role) => `'${role}'`).join(', '));

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true }).notNull().defaultNow();

export const organizations = pgTable('organizations', {
  organizationId: varchar('organization_id', { length: 100 }).primaryKey(),
  name: varchar('name', { length: 255 }).notNull(),
  domain: varchar('domain', { length: 255 }),
  subscriptionTier: varchar('subscription_tier', { length: 50 }).default('free'),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const users = pgTable(
  'users',
  {
    userId: varchar('user_id', { length: 100 }).primaryKey(),
    email: varchar('email', { length: 255 }),
    name: varchar('name', { length: 255 }),
    role: varchar('role', { length: 50, enum: userRoles }).notNull().default('student'),
    organizationId: varchar('organization_id', { length: 100 }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    foreignKey({
      name: 'users_organization_id_fkey',
      columns: [t.organizationId],
      foreignColumns: [organizations.organizationId],
    }).onDelete('set null'),
    check('users_role_check', sql`${t.role} in (${roleLiterals})`),
    index('idx_users_organization').on(t.organizationId),
  ],
);

/** The ordered pipeline; rows are seeded by a migration. */
export const pipelineStageDefinitions = pgTable(
  'pipeline_stage_definitions',
  {
    stageName: varchar('stage_name', { length: 100 }).primaryKey(),
    displayName: varchar('display_name', { length: 255 }).notNull(),
    stageOrder: integer('stage_order').notNull(),
    progressWeight: integer('progress_weight').notNull(),
    /**
     * The content_request_status value the stage drives, as text: a stage's
     * migration adds that value and this row in one transaction, and
     * PostgreSQL refuses to use an enum value before its transaction commits.
     * A trigger checks the value is one (drizzle/0009).
     */
    requestStatus: varchar('request_status', { length: 100 }).$type<RequestStatus>().notNull(),
    expectedDurationSeconds: integer('expected_duration_seconds').notNull(),
    description: text('description'),
  },
  (t) => [
    unique('pipeline_stage_definitions_stage_order_key').on(t.stageOrder),
    unique('pipeline_stage_definitions_request_status_key').on(t.requestStatus),
    check('pipeline_stage_definitions_weight_check', sql`${t.progressWeight} >= 0`),
  ],
);

/**
 * A request that has finished: completed, failed or cancelled. Spelled as
 * literals, not a parameter, so the planner can match a query using it to
 * the partial index on it.
 */
export const FINISHED_REQUEST = sql`status in ('completed'::content_request_status, 'failed'::content_request_status, 'cancelled'::content_request_status)`;

export const contentRequests = pgTable(
  'content_requests',
  {
    // identity
    id: uuid('id').primaryKey().defaultRandom(),
    /** Unique. A worker's or admin's key as given; anyone else's, scoped to them (services/requests.ts). */
    correlationId: varchar('correlation_id', { length: 255 }).notNull(),
    /** The key as its submitter gave it, when correlation_id holds a scoped one; NULL: correlation_id is the key. */
    submittedCorrelationId: varchar('submitted_correlation_id', { length: 255 }),
    // who
    studentId: varchar('student_id', { length: 100 }).notNull(),
    organizationId: varchar('organization_id', { length: 100 }),
    // what
    topic: varchar('topic', { length: 500 }).notNull(),
    studentQuery: text('student_query').notNull(),
    gradeLevel: varchar('grade_level', { length: 50 }),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    // lifecycle
    status: contentRequestStatus('status').$type<RequestStatus>().notNull().default('pending'),
    currentStage: varchar('current_stage', { length: 100 }),
    progressPercentage: integer('progress_percentage').notNull().default(0),
    retryCount: integer('retry_count').notNull().default(0),
    // outcome
    result: jsonb('result').$type<Record<string, unknown>>(),
    errorMessage: text('error_message'),
    errorStage: varchar('error_stage', { length: 100 }),
    // times
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    failedAt: timestamp('failed_at', { withTimezone: true }),
  },
  (t) => [
    unique('content_requests_correlation_id_key').on(t.correlationId),
    foreignKey({
      name: 'content_requests_student_id_fkey',
      columns: [t.studentId],
      foreignColumns: [users.userId],
    }).onDelete('cascade'),
    foreignKey({
      name: 'content_requests_organization_id_fkey',
      columns: [t.organizationId],
      foreignColumns: [organizations.organizationId],
    }).onDelete('set null'),
    check(
      'content_requests_progress_check',
      sql`${t.progressPercentage} between 0 and 100`,
    ),
    check('content_requests_retry_count_check', sql`${t.retryCount} >= 0`),
    // The seed's single-column indexes.
    index('idx_content_requests_correlation').on(t.correlationId),
    index('idx_content_requests_student').on(t.studentId),
    index('idx_content_requests_status').on(t.status),
    index('idx_content_requests_created').on(t.createdAt.desc()),
    index('idx_content_requests_org').on(t.organizationId),
    // The seed's compound indexes, two of them partial.
    index('idx_content_requests_correlation_status').on(t.correlationId, t.status),
    index('idx_content_requests_student_status_created').on(
      t.studentId,
      t.status,
      t.createdAt.desc(),
    ),
    index('idx_content_requests_status_created').on(t.status, t.createdAt.desc()),
    index('idx_content_requests_org_status_created')
      .on(t.organizationId, t.status, t.createdAt.desc())
      .where(sql`organization_id IS NOT NULL`),
    index('idx_content_requests_failed_debugging')
      .on(t.status, t.errorStage, t.failedAt.desc())
      .where(sql`status = 'failed'::content_request_status`),
    // Added for the query patterns measured at a million rows (bench/README.md):
    // a student's history in keyset pages, and the newest failures first.
    index('idx_content_requests_student_history').on(
      t.studentId,
      t.createdAt.desc(),
      t.id.desc(),
    ),
    index('idx_content_requests_failed_recent')
      .on(t.failedAt.desc())
      .where(sql`status = 'failed'::content_request_status`),
    // Retention's candidates (services/retention.ts): finished requests, oldest change first.
    index('idx_content_requests_finished_updated').on(t.updatedAt).where(FINISHED_REQUEST),
  ],
);

export const requestStages = pgTable(
  'request_stages',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    requestId: uuid('request_id').notNull(),
    stageName: varchar('stage_name', { length: 100 }).notNull(),
    status: contentStageStatus('status').notNull().default('pending'),
    /** Progress within this stage, 0-100; counts toward the request's progress while running. */
    progressPercentage: integer('progress_percentage').notNull().default(0),
    startedAt: timestamp('started_at', { withTimezone: true }),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    durationSeconds: numeric('duration_seconds', { precision: 12, scale: 3, mode: 'number' }),
    errorMessage: text('error_message'),
    retryCount: integer('retry_count').notNull().default(0),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    /** When the stall check found this run of the stage overdue; cleared by its next progress or status (drizzle/0010). */
    stalledAt: timestamp('stalled_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    unique('request_stages_request_id_stage_name_key').on(t.requestId, t.stageName),
    foreignKey({
      name: 'request_stages_request_id_fkey',
      columns: [t.requestId],
      foreignColumns: [contentRequests.id],
    }).onDelete('cascade'),
    // A stage must be one the pipeline defines; definitions in use cannot be deleted.
    foreignKey({
      name: 'request_stages_stage_name_fkey',
      columns: [t.stageName],
      foreignColumns: [pipelineStageDefinitions.stageName],
    }).onDelete('restrict'),
    check(
      'request_stages_progress_check',
      sql`${t.progressPercentage} between 0 and 100`,
    ),
    index('idx_request_stages_stage_status').on(t.stageName, t.status),
    // The stall check's candidates: running stages not yet marked, oldest first.
    index('idx_request_stages_running_unstalled')
      .on(t.startedAt)
      .where(sql`status = 'in_progress'::content_stage_status AND stalled_at IS NULL`),
    // The stalled list and gauge: the few stages marked stalled.
    index('idx_request_stages_stalled').on(t.requestId).where(sql`stalled_at IS NOT NULL`),
    // The stage-duration estimates read recent completed stages only (services/eta.ts).
    index('idx_request_stages_completed_recent')
      .on(t.completedAt.desc())
      .where(sql`status = 'completed'::content_stage_status`),
  ],
);

/**
 * Append-only. `sequence` counts 1, 2, 3 … per request. `id` is taken at
 * insert, not at commit, so it is not an order across requests: the global
 * cursor is `feed_position` (drizzle/0005).
 */
export const requestEvents = pgTable(
  'request_events',
  {
    id: bigint('id', { mode: 'bigint' }).primaryKey().generatedAlwaysAsIdentity(),
    requestId: uuid('request_id').notNull(),
    sequence: integer('sequence').notNull(),
    eventType: requestEventType('event_type').notNull(),
    oldStatus: contentRequestStatus('old_status').$type<RequestStatus>(),
    newStatus: contentRequestStatus('new_status').$type<RequestStatus>().notNull(),
    stage: varchar('stage', { length: 100 }),
    progressPercentage: integer('progress_percentage').notNull(),
    severity: eventSeverity('severity').notNull().default('info'),
    message: text('message'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
    /**
     * The live feed's cursor: numbered at commit, in commit order, by a
     * deferred trigger (drizzle/0005), so a visible position implies every
     * smaller one is visible too. NULL only inside the writing transaction.
     */
    feedPosition: bigint('feed_position', { mode: 'bigint' }),
  },
  (t) => [
    // Also the index that serves a replay: WHERE request_id = $1 AND sequence > $2.
    unique('request_events_request_id_sequence_key').on(t.requestId, t.sequence),
    foreignKey({
      name: 'request_events_request_id_fkey',
      columns: [t.requestId],
      foreignColumns: [contentRequests.id],
    }).onDelete('cascade'),
    unique('request_events_feed_position_key').on(t.feedPosition),
    index('idx_request_events_created').on(t.createdAt.desc()),
    index('idx_request_events_type').on(t.eventType),
  ],
);

/** Hourly aggregates per organization (NULL: requests without one). */
export const requestMetrics = pgTable(
  'request_metrics',
  {
    id: bigint('id', { mode: 'bigint' }).primaryKey().generatedAlwaysAsIdentity(),
    organizationId: varchar('organization_id', { length: 100 }),
    metricHour: timestamp('metric_hour', { withTimezone: true }).notNull(),
    totalRequests: integer('total_requests').notNull().default(0),
    completedRequests: integer('completed_requests').notNull().default(0),
    failedRequests: integer('failed_requests').notNull().default(0),
    cancelledRequests: integer('cancelled_requests').notNull().default(0),
    avgDurationSeconds: numeric('avg_duration_seconds', { precision: 12, scale: 3, mode: 'number' }),
    p95DurationSeconds: numeric('p95_duration_seconds', { precision: 12, scale: 3, mode: 'number' }),
    errorBreakdown: jsonb('error_breakdown').$type<Record<string, number>>().notNull().default({}),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    foreignKey({
      name: 'request_metrics_organization_id_fkey',
      columns: [t.organizationId],
      foreignColumns: [organizations.organizationId],
    }).onDelete('cascade'),
    unique('request_metrics_org_hour_key').on(t.organizationId, t.metricHour).nullsNotDistinct(),
    index('idx_request_metrics_hour').on(t.metricHour.desc()),
  ],
);

/**
 * How far each incremental reader of the event log has got: the last
 * request_events.feed_position it has taken into account. The metrics rollup
 * (services/monitoring.ts) is one.
 */
export const eventLogCursors = pgTable('event_log_cursors', {
  name: varchar('name', { length: 100 }).primaryKey(),
  feedPosition: bigint('feed_position', { mode: 'bigint' }).notNull(),
  updatedAt: updatedAt(),
});

/**
 * Per-user budgets (services/limits.ts): rate-limiter-flexible's RateLimiterDrizzle
 * store, one row a key, in the database so every server process shares it.
 */
export const rateLimits = pgTable('rate_limits', {
  key: varchar('key', { length: 255 }).primaryKey(),
  points: integer('points').notNull().default(0),
  expire: timestamp('expire', { withTimezone: true }),
});

/**
 * Who runs each periodic job (services/jobs.ts): one row a job, held by one
 * process until `expires_at`, renewed while it lives, so with several
 * replicas each job runs in one of them at a time.
 */
export const jobLeases = pgTable('job_leases', {
  jobName: varchar('job_name', { length: 100 }).primaryKey(),
  holder: varchar('holder', { length: 255 }).notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  lastRunAt: timestamp('last_run_at', { withTimezone: true }),
});

/**
 * How long each stage takes: the median duration of its recently completed
 * runs, for everyone (organization_id NULL) and for each organization with
 * enough history. Rewritten whole by the estimates job (services/eta.ts);
 * the ETA of a request is computed from these rows, never from the history.
 */
export const stageDurationEstimates = pgTable(
  'stage_duration_estimates',
  {
    id: bigint('id', { mode: 'bigint' }).primaryKey().generatedAlwaysAsIdentity(),
    stageName: varchar('stage_name', { length: 100 }).notNull(),
    /** NULL: every organization's history together. */
    organizationId: varchar('organization_id', { length: 100 }),
    sampleCount: integer('sample_count').notNull(),
    medianSeconds: numeric('median_seconds', { precision: 12, scale: 3, mode: 'number' }).notNull(),
    refreshedAt: timestamp('refreshed_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique('stage_duration_estimates_stage_org_key').on(t.stageName, t.organizationId).nullsNotDistinct(),
    foreignKey({
      name: 'stage_duration_estimates_stage_name_fkey',
      columns: [t.stageName],
      foreignColumns: [pipelineStageDefinitions.stageName],
    }).onDelete('cascade'),
    foreignKey({
      name: 'stage_duration_estimates_organization_id_fkey',
      columns: [t.organizationId],
      foreignColumns: [organizations.organizationId],
    }).onDelete('cascade'),
  ],
);

/**
 * What retention has removed (services/retention.ts), one row: the highest
 * feed position it deleted. A feed cursor below it may have missed purged
 * events, so it is refused rather than replayed with a silent gap.
 */
export const retentionWatermark = pgTable(
  'retention_watermark',
  {
    id: boolean('id').primaryKey().default(true),
    purgedThroughPosition: bigint('purged_through_position', { mode: 'bigint' }).notNull().default(sql`0`),
    updatedAt: updatedAt(),
  },
  (t) => [check('retention_watermark_one_row', sql`${t.id}`)],
);
