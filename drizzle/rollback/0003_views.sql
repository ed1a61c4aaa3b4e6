DROP VIEW IF EXISTS request_metrics_summary;
--> statement-breakpoint
DROP VIEW IF EXISTS active_requests_dashboard;
