-- custom SQL below

-- A stage report in one round trip (src/services/stages.ts calls it). Lock
-- the request before its stage, in the order update_request_progress() does,
-- so concurrent reports on one request queue instead of deadlocking; write
-- nothing on a request whose status is in refusing_statuses (checked on the
-- row as it is once the lock is ours); upsert the stage, whose triggers move
-- the request and log the event; return the request as they left it. One SQL
-- statement could not return that: its RETURNING and subqueries see the rows
-- as they were before its AFTER triggers ran, a later statement here sees
-- them after. No row back: nothing was written.
CREATE OR REPLACE FUNCTION report_stage(
  report_request_id uuid,
  report_stage_name varchar,
  report_status content_stage_status,
  report_progress integer,
  report_error_message text,
  report_metadata jsonb,
  refusing_statuses content_request_status[]
) RETURNS SETOF content_requests
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  INSERT INTO request_stages (request_id, stage_name, status, progress_percentage, error_message, metadata)
  SELECT r.id, report_stage_name, report_status, coalesce(report_progress, 0), report_error_message, report_metadata
    FROM content_requests r
   WHERE r.id = report_request_id
     AND r.status <> ALL (refusing_statuses)
     FOR NO KEY UPDATE OF r
  ON CONFLICT (request_id, stage_name) DO UPDATE SET
    status = excluded.status,
    -- No progress in the report: keep the stage's own (the timing trigger restarts it at 0 on a restart).
    progress_percentage = coalesce(report_progress, request_stages.progress_percentage),
    error_message = excluded.error_message,
    metadata = request_stages.metadata || excluded.metadata;
  IF FOUND THEN
    RETURN QUERY SELECT * FROM content_requests r WHERE r.id = report_request_id;
  END IF;
END
$$;
