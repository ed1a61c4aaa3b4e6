DROP INDEX IF EXISTS "idx_content_requests_finished_updated";
--> statement-breakpoint
DROP TABLE IF EXISTS "retention_watermark";
