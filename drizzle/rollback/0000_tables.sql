DROP TABLE IF EXISTS request_metrics;
--> statement-breakpoint
DROP TABLE IF EXISTS request_events;
--> statement-breakpoint
DROP TABLE IF EXISTS request_stages;
--> statement-breakpoint
DROP TABLE IF EXISTS content_requests;
--> statement-breakpoint
DROP TABLE IF EXISTS pipeline_stage_definitions;
--> statement-breakpoint
DROP TABLE IF EXISTS users;
--> statement-breakpoint
DROP TABLE IF EXISTS organizations;
--> statement-breakpoint
DROP TYPE IF EXISTS event_severity;
--> statement-breakpoint
DROP TYPE IF EXISTS request_event_type;
--> statement-breakpoint
DROP TYPE IF EXISTS content_stage_status;
--> statement-breakpoint
DROP TYPE IF EXISTS content_request_status;
