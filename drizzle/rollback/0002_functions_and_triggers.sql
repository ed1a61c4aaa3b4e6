DROP TRIGGER IF EXISTS log_request_status_changes ON content_requests;
--> statement-breakpoint
DROP TRIGGER IF EXISTS update_progress_on_stage_change ON request_stages;
--> statement-breakpoint
DROP TRIGGER IF EXISTS track_stage_timing ON request_stages;
--> statement-breakpoint
DROP TRIGGER IF EXISTS enforce_status_lifecycle ON content_requests;
--> statement-breakpoint
DROP TRIGGER IF EXISTS set_updated_at ON request_metrics;
--> statement-breakpoint
DROP TRIGGER IF EXISTS set_updated_at ON request_stages;
--> statement-breakpoint
DROP TRIGGER IF EXISTS set_updated_at ON content_requests;
--> statement-breakpoint
DROP TRIGGER IF EXISTS set_updated_at ON users;
--> statement-breakpoint
DROP TRIGGER IF EXISTS set_updated_at ON organizations;
--> statement-breakpoint
DROP FUNCTION IF EXISTS log_status_change();
--> statement-breakpoint
DROP FUNCTION IF EXISTS update_request_progress();
--> statement-breakpoint
DROP FUNCTION IF EXISTS tg_request_stages__track_timing();
--> statement-breakpoint
DROP FUNCTION IF EXISTS calculate_request_progress(uuid);
--> statement-breakpoint
DROP FUNCTION IF EXISTS tg_content_requests__enforce_lifecycle();
--> statement-breakpoint
DROP FUNCTION IF EXISTS content_request_transition_allowed(content_request_status, content_request_status, boolean);
--> statement-breakpoint
DROP FUNCTION IF EXISTS tg__set_updated_at();
