ALTER TABLE "request_events" ADD COLUMN "feed_position" bigint;--> statement-breakpoint
ALTER TABLE "request_events" ADD CONSTRAINT "request_events_feed_position_key" UNIQUE("feed_position");