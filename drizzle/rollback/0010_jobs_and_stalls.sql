-- The request_event_type value stage_stalled stays (PostgreSQL cannot drop an
-- enum value); the events that used it are deleted first, so the value is unused.
DELETE FROM request_events WHERE event_type::text = 'stage_stalled';
--> statement-breakpoint
DROP FUNCTION IF EXISTS mark_stalled_stages(numeric, integer);
--> statement-breakpoint
DROP TRIGGER IF EXISTS clear_stall_on_progress ON request_stages;
--> statement-breakpoint
DROP FUNCTION IF EXISTS tg_request_stages__clear_stall();
--> statement-breakpoint
DROP INDEX IF EXISTS idx_request_stages_stalled;
--> statement-breakpoint
DROP INDEX IF EXISTS idx_request_stages_running_unstalled;
--> statement-breakpoint
ALTER TABLE request_stages DROP COLUMN IF EXISTS stalled_at;
--> statement-breakpoint
DROP TABLE IF EXISTS job_leases;
