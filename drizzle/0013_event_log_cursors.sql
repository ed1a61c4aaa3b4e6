CREATE TABLE "event_log_cursors" (
	"name" varchar(100) PRIMARY KEY NOT NULL,
	"feed_position" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
-- custom SQL below
CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON event_log_cursors
  FOR EACH ROW EXECUTE FUNCTION tg__set_updated_at();
