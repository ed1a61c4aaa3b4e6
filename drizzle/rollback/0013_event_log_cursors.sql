DROP TABLE IF EXISTS "event_log_cursors";
