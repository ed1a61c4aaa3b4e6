/**
 * The views of drizzle/0003_views.sql, declared for typed reads. `.existing()`
 * keeps drizzle-kit from generating them: the SQL migration owns their definition.
 */
import { boolean, integer, pgView, timestamp, uuid, varchar } from 'drizzle-orm/pg-core';
import { contentRequestStatus, contentStageStatus, type RequestStatus } from './tables.js';

const at = (name: string) => timestamp(name, { withTimezone: true });

export const activeRequestsDashboard = pgView('active_requests_dashboard', {
  id: uuid('id').notNull(),
  correlationId: varchar('correlation_id').notNull(),
  studentId: varchar('student_id').notNull(),
  studentName: varchar('student_name'),
  organizationId: varchar('organization_id'),
  organizationName: varchar('organization_name'),
  topic: varchar('topic').notNull(),
  gradeLevel: varchar('grade_level'),
  status: contentRequestStatus('status').$type<RequestStatus>().notNull(),
  currentStage: varchar('current_stage'),
  currentStageDisplayName: varchar('current_stage_display_name'),
  progressPercentage: integer('progress_percentage').notNull(),
  retryCount: integer('retry_count').notNull(),
  createdAt: at('created_at').notNull(),
  startedAt: at('started_at'),
  updatedAt: at('updated_at').notNull(),
  stageStatus: contentStageStatus('stage_status'),
  stageStartedAt: at('stage_started_at'),
  stageExpectedDurationSeconds: integer('stage_expected_duration_seconds'),
  secondsSinceCreated: integer('seconds_since_created').notNull(),
  secondsInStage: integer('seconds_in_stage'),
  isOverdue: boolean('is_overdue').notNull(),
}).existing();
