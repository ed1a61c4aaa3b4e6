DROP INDEX IF EXISTS "idx_request_stages_completed_recent";
--> statement-breakpoint
DROP TABLE IF EXISTS "stage_duration_estimates";
