ALTER TABLE request_events DROP CONSTRAINT IF EXISTS request_events_feed_position_key;
--> statement-breakpoint
ALTER TABLE request_events DROP COLUMN IF EXISTS feed_position;
