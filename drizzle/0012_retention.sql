CREATE TABLE "retention_watermark" (
	"id" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"purged_through_position" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "retention_watermark_one_row" CHECK ("retention_watermark"."id")
);
--> statement-breakpoint
CREATE INDEX "idx_content_requests_finished_updated" ON "content_requests" USING btree ("updated_at") WHERE status in ('completed'::content_request_status, 'failed'::content_request_status, 'cancelled'::content_request_status);--> statement-breakpoint
-- custom SQL below
-- The watermark's one row exists from the start, so readers and the purge never insert it.
INSERT INTO "retention_watermark" DEFAULT VALUES ON CONFLICT DO NOTHING;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON retention_watermark
  FOR EACH ROW EXECUTE FUNCTION tg__set_updated_at();
