ALTER TYPE "public"."request_event_type" ADD VALUE IF NOT EXISTS 'stage_stalled';--> statement-breakpoint
CREATE TABLE "job_leases" (
	"job_name" varchar(100) PRIMARY KEY NOT NULL,
	"holder" varchar(255) NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"last_run_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "request_stages" ADD COLUMN "stalled_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "idx_request_stages_running_unstalled" ON "request_stages" USING btree ("started_at") WHERE status = 'in_progress'::content_stage_status AND stalled_at IS NULL;--> statement-breakpoint
CREATE INDEX "idx_request_stages_stalled" ON "request_stages" USING btree ("request_id") WHERE stalled_at IS NOT NULL;--> statement-breakpoint
-- custom SQL below

-- A stall lasts until the stage moves: a change of its status or its own
-- progress clears the mark, so the request leaves the stalled list. The same
-- run stalls again only after as long again without moving (the check reads
-- updated_at, which that change stamped).
CREATE OR REPLACE FUNCTION tg_request_stages__clear_stall() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  NEW.stalled_at := NULL;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER clear_stall_on_progress BEFORE UPDATE ON request_stages
  FOR EACH ROW
  WHEN (OLD.stalled_at IS NOT NULL AND NEW.stalled_at IS NOT NULL
        AND (NEW.status IS DISTINCT FROM OLD.status OR NEW.progress_percentage IS DISTINCT FROM OLD.progress_percentage))
  EXECUTE FUNCTION tg_request_stages__clear_stall();
--> statement-breakpoint

-- Marks up to batch_limit running stages of requests in flight that have run
-- longer than stall_factor times their expected duration and have not moved
-- (no progress, no report: updated_at) for as long, and writes one
-- stage_stalled event for each (the feed trigger numbers and notifies it like
-- any other). Returns how many it marked. The stalled_at guard makes a second
-- caller (another replica, a rerun) mark nothing twice. Candidates come from
-- idx_request_stages_running_unstalled: the bound on started_at by the
-- shortest expected duration is its index condition. plpgsql, so the new enum
-- value is read only when it runs, never in the migration's transaction.
CREATE OR REPLACE FUNCTION mark_stalled_stages(stall_factor numeric, batch_limit integer) RETURNS integer
LANGUAGE plpgsql VOLATILE
-- Planned with the call's values every time: a cached generic plan cannot
-- see how few rows the bound on started_at leaves, and may read them all.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
  candidate record;
  request_row record;
  marked integer := 0;
  next_sequence integer;
BEGIN
  FOR candidate IN
    SELECT s.id AS stage_id, s.request_id, s.stage_name, d.expected_duration_seconds
      FROM request_stages s
      JOIN pipeline_stage_definitions d ON d.stage_name = s.stage_name
     WHERE s.status = 'in_progress' AND s.stalled_at IS NULL
       AND s.started_at < now() - make_interval(secs => stall_factor * (SELECT min(expected_duration_seconds) FROM pipeline_stage_definitions))
       AND s.started_at < now() - make_interval(secs => stall_factor * d.expected_duration_seconds)
       AND s.updated_at < now() - make_interval(secs => stall_factor * d.expected_duration_seconds)
       -- A request cancelled (or failed by hand) mid-stage leaves its stage running: never a
       -- candidate, or enough of them would fill every batch and hide the real stalls.
       AND EXISTS (SELECT 1 FROM content_requests r
                    WHERE r.id = s.request_id AND r.status = ANY (pipeline_in_flight_statuses()))
     ORDER BY s.started_at
     LIMIT batch_limit
  LOOP
    -- The request first, then the stage (the lock order); one being written
    -- right now is skipped, not waited for: the next check sees it.
    SELECT r.status, r.progress_percentage INTO request_row
      FROM content_requests r
     WHERE r.id = candidate.request_id AND r.status = ANY (pipeline_in_flight_statuses())
       FOR NO KEY UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    UPDATE request_stages s SET stalled_at = now()
     WHERE s.id = (SELECT l.id FROM request_stages l
                    WHERE l.id = candidate.stage_id AND l.status = 'in_progress' AND l.stalled_at IS NULL
                      AND l.started_at < now() - make_interval(secs => stall_factor * candidate.expected_duration_seconds)
                      AND l.updated_at < now() - make_interval(secs => stall_factor * candidate.expected_duration_seconds)
                      FOR UPDATE SKIP LOCKED);
    CONTINUE WHEN NOT FOUND;

    SELECT coalesce(max(e.sequence), 0) + 1 INTO next_sequence
      FROM request_events e WHERE e.request_id = candidate.request_id;
    INSERT INTO request_events
      (request_id, sequence, event_type, old_status, new_status, stage, progress_percentage, severity, message)
    VALUES
      (candidate.request_id, next_sequence, 'stage_stalled', request_row.status, request_row.status, candidate.stage_name,
       request_row.progress_percentage, 'warning',
       format('Stage %s stalled: running longer than %s s', candidate.stage_name,
              round(stall_factor * candidate.expected_duration_seconds)));
    marked := marked + 1;
  END LOOP;
  RETURN marked;
END
$$;
