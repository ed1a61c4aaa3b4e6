ALTER TABLE "pipeline_stage_definitions" ALTER COLUMN "request_status" SET DATA TYPE varchar(100);--> statement-breakpoint

-- Stages as data: the stage order lives in pipeline_stage_definitions only.
-- Adding a stage is one migration: ALTER TYPE content_request_status ADD VALUE
-- and the stage's row. request_status became text above because that row
-- cannot use the enum value its own transaction added; this trigger checks it
-- by name instead (a comparison of text, which PostgreSQL allows).
CREATE OR REPLACE FUNCTION tg_pipeline_stage_definitions__check_request_status() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF NEW.request_status IN ('pending', 'completed', 'failed', 'cancelled') OR NOT EXISTS (
    SELECT 1 FROM pg_enum e
     WHERE e.enumtypid = 'content_request_status'::regtype AND e.enumlabel = NEW.request_status
  ) THEN
    RAISE EXCEPTION 'stage % drives %, which is not a stage status of content_request_status',
      NEW.stage_name, NEW.request_status
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER check_request_status BEFORE INSERT OR UPDATE ON pipeline_stage_definitions
  FOR EACH ROW EXECUTE FUNCTION tg_pipeline_stage_definitions__check_request_status();
--> statement-breakpoint

-- The statuses of a request still in the pipeline: pending, then each stage's
-- status in stage order. The one definition of "in flight" (the dashboard view,
-- the live feed's default snapshot and the transitions read it).
CREATE OR REPLACE FUNCTION pipeline_in_flight_statuses() RETURNS content_request_status[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT array['pending'::content_request_status]
    || coalesce(array_agg(d.request_status::content_request_status ORDER BY d.stage_order), '{}')
  FROM pipeline_stage_definitions d
$$;
--> statement-breakpoint

-- The lifecycle of drizzle/0002, with "forward one stage" read from the
-- definitions: each in-flight status to the next, the last one to completed.
-- STABLE, no longer IMMUTABLE: it reads a table (no index or constraint uses it).
CREATE OR REPLACE FUNCTION content_request_transition_allowed(
  from_status content_request_status,
  to_status content_request_status,
  resuming boolean DEFAULT false
) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT from_status = to_status OR coalesce(CASE
    WHEN to_status IN ('failed', 'cancelled')
      THEN from_status NOT IN ('completed', 'failed', 'cancelled')
    WHEN from_status = 'failed'
      THEN to_status = 'pending'
    WHEN from_status = 'pending' AND resuming
      THEN to_status NOT IN ('pending', 'completed')
    ELSE (from_status, to_status) IN (
      SELECT s.status, coalesce(lead(s.status) OVER (ORDER BY s.position), 'completed')
        FROM unnest(pipeline_in_flight_statuses()) WITH ORDINALITY AS s(status, position)
    )
  END, false)
$$;
--> statement-breakpoint

-- drizzle/0002's, with the last stage's status read from its definition
-- rather than named.
CREATE OR REPLACE FUNCTION update_request_progress() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  driven_status content_request_status;
  is_last_stage boolean;
  current_status content_request_status;
  new_status content_request_status;
  new_progress integer;
  stage_event text;
  stage_status_changed boolean;
BEGIN
  IF TG_OP = 'UPDATE'
     AND NEW.status = OLD.status
     AND NEW.progress_percentage = OLD.progress_percentage THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' AND NEW.status = 'pending' THEN
    RETURN NULL;
  END IF;

  -- Lock the request first, then compute in a new statement: its snapshot
  -- then sees every stage change committed by whoever held the lock before
  -- us (computing inside the UPDATE would use the snapshot from before the wait).
  SELECT r.status INTO current_status
    FROM content_requests r WHERE r.id = NEW.request_id
    FOR NO KEY UPDATE;
  new_progress := calculate_request_progress(NEW.request_id);

  SELECT d.request_status,
         d.stage_order = (SELECT max(stage_order) FROM pipeline_stage_definitions)
    INTO driven_status, is_last_stage
    FROM pipeline_stage_definitions d
   WHERE d.stage_name = NEW.stage_name;

  -- Only a change of the stage's status moves the request; a progress report
  -- on a stage still running after the next one started just moves the bar.
  stage_status_changed := TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status;
  new_status := CASE
    WHEN NOT stage_status_changed THEN current_status
    -- The last stage's own status: its stage was running when it completed.
    WHEN NEW.status IN ('completed', 'skipped') AND is_last_stage AND current_status = driven_status
      THEN 'completed'::content_request_status
    WHEN NEW.status IN ('in_progress', 'skipped') THEN driven_status
    WHEN NEW.status = 'failed' THEN 'failed'::content_request_status
    ELSE current_status
  END;
  stage_event := CASE
    WHEN TG_OP = 'UPDATE' AND NEW.status = OLD.status THEN ''
    WHEN NEW.status = 'in_progress' THEN 'stage_started'
    WHEN NEW.status IN ('completed', 'skipped') THEN 'stage_completed'
    ELSE ''
  END;

  PERFORM set_config('content_tracker.stage_event', stage_event, true);
  PERFORM set_config('content_tracker.stage_name', NEW.stage_name, true);
  UPDATE content_requests r SET
    status = new_status,
    current_stage = CASE WHEN stage_status_changed AND NEW.status IN ('in_progress', 'skipped') THEN NEW.stage_name ELSE r.current_stage END,
    error_stage = CASE WHEN NEW.status = 'failed' THEN NEW.stage_name ELSE r.error_stage END,
    error_message = CASE WHEN NEW.status = 'failed' THEN NEW.error_message ELSE r.error_message END,
    -- 100 only once the request completes (the lifecycle trigger sets it).
    progress_percentage = least(new_progress, 99)
  WHERE r.id = NEW.request_id;
  PERFORM set_config('content_tracker.stage_event', '', true);
  PERFORM set_config('content_tracker.stage_name', '', true);
  RETURN NULL;
END
$$;
--> statement-breakpoint

-- drizzle/0007's dashboard, filtered by the in-flight function. Same columns,
-- so OR REPLACE; = ANY of a STABLE function's array still uses idx_content_requests_status.
CREATE OR REPLACE VIEW active_requests_dashboard AS
SELECT
  r.id,
  -- The key as its submitter gave it (a student's is stored scoped to them).
  coalesce(r.submitted_correlation_id, r.correlation_id)::varchar(255) AS correlation_id,
  r.student_id,
  u.name AS student_name,
  r.organization_id,
  o.name AS organization_name,
  r.topic,
  r.grade_level,
  r.status,
  r.current_stage,
  d.display_name AS current_stage_display_name,
  r.progress_percentage,
  r.retry_count,
  r.created_at,
  r.started_at,
  r.updated_at,
  s.status AS stage_status,
  s.started_at AS stage_started_at,
  d.expected_duration_seconds AS stage_expected_duration_seconds,
  floor(extract(epoch FROM now() - r.created_at))::integer AS seconds_since_created,
  floor(extract(epoch FROM now() - s.started_at))::integer AS seconds_in_stage,
  coalesce(
    s.status = 'in_progress'
      AND now() - s.started_at > make_interval(secs => d.expected_duration_seconds),
    false
  ) AS is_overdue
FROM content_requests r
LEFT JOIN users u ON u.user_id = r.student_id
LEFT JOIN organizations o ON o.organization_id = r.organization_id
LEFT JOIN request_stages s ON s.request_id = r.id AND s.stage_name = r.current_stage
LEFT JOIN pipeline_stage_definitions d ON d.stage_name = r.current_stage
WHERE r.status = ANY (pipeline_in_flight_statuses());
