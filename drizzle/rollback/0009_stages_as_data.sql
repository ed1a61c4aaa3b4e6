-- Back to the stage order written out in drizzle/0002 and drizzle/0007, and
-- request_status back to the enum.
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
-- IN, not NOT IN, so idx_content_requests_status can serve it.
WHERE r.status IN ('pending', 'validating', 'retrieving', 'generating_script', 'generating_video', 'processing_video');
--> statement-breakpoint
CREATE OR REPLACE FUNCTION content_request_transition_allowed(
  from_status content_request_status,
  to_status content_request_status,
  resuming boolean DEFAULT false
) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT from_status = to_status OR coalesce(CASE
    WHEN to_status IN ('failed', 'cancelled')
      THEN from_status NOT IN ('completed', 'failed', 'cancelled')
    WHEN from_status = 'failed'
      THEN to_status = 'pending'
    WHEN from_status = 'pending' AND resuming
      THEN to_status NOT IN ('pending', 'completed')
    ELSE to_status = CASE from_status
      WHEN 'pending' THEN 'validating'::content_request_status
      WHEN 'validating' THEN 'retrieving'::content_request_status
      WHEN 'retrieving' THEN 'generating_script'::content_request_status
      WHEN 'generating_script' THEN 'generating_video'::content_request_status
      WHEN 'generating_video' THEN 'processing_video'::content_request_status
      WHEN 'processing_video' THEN 'completed'::content_request_status
    END
  END, false)
$$;
--> statement-breakpoint
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
    WHEN NEW.status IN ('completed', 'skipped') AND is_last_stage AND current_status = 'processing_video'
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
DROP FUNCTION pipeline_in_flight_statuses();
--> statement-breakpoint
DROP TRIGGER check_request_status ON pipeline_stage_definitions;
--> statement-breakpoint
DROP FUNCTION tg_pipeline_stage_definitions__check_request_status();
--> statement-breakpoint
ALTER TABLE "pipeline_stage_definitions" ALTER COLUMN "request_status"
  SET DATA TYPE content_request_status USING "request_status"::content_request_status;
