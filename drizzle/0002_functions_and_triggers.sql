-- Functions and triggers: the database, not its writers, keeps timestamps,
-- progress, the status lifecycle and the event log, so a writer in any language
-- gets them. Every statement is idempotent (OR REPLACE); separate statements
-- with breakpoints for PGlite.

-- updated_at on every table that has one.
CREATE OR REPLACE FUNCTION tg__set_updated_at() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON organizations
  FOR EACH ROW EXECUTE FUNCTION tg__set_updated_at();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION tg__set_updated_at();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON content_requests
  FOR EACH ROW EXECUTE FUNCTION tg__set_updated_at();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON request_stages
  FOR EACH ROW EXECUTE FUNCTION tg__set_updated_at();
--> statement-breakpoint
CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON request_metrics
  FOR EACH ROW EXECUTE FUNCTION tg__set_updated_at();
--> statement-breakpoint

-- The status lifecycle (docs/data-model.md): forward one stage at a time, any
-- non-terminal status to failed or cancelled, failed back to pending on retry.
-- A retried request (resuming) may go from pending straight to the stage it
-- resumes at: the stages before it were done on an earlier attempt.
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

-- Refuses a transition outside the lifecycle (SQLSTATE 'INVTR', mapped to the
-- API's INVALID_TRANSITION) and stamps the lifecycle's times.
CREATE OR REPLACE FUNCTION tg_content_requests__enforce_lifecycle() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'pending' THEN
      RAISE EXCEPTION 'a new content request must start as pending, not %', NEW.status
        USING ERRCODE = 'INVTR';
    END IF;
    RETURN NEW;
  END IF;

  IF NEW.status = OLD.status THEN
    RETURN NEW;
  END IF;

  IF NOT content_request_transition_allowed(OLD.status, NEW.status, OLD.retry_count > 0) THEN
    RAISE EXCEPTION 'content request % cannot go from % to %', OLD.id, OLD.status, NEW.status
      USING ERRCODE = 'INVTR',
            DETAIL = format('from_status=%s to_status=%s', OLD.status, NEW.status);
  END IF;

  IF OLD.status = 'pending' AND NEW.status <> 'cancelled' THEN
    NEW.started_at := coalesce(NEW.started_at, now());
  END IF;

  CASE NEW.status
    WHEN 'completed' THEN
      NEW.completed_at := coalesce(NEW.completed_at, now());
      NEW.progress_percentage := 100;
    WHEN 'failed' THEN
      NEW.failed_at := coalesce(NEW.failed_at, now());
      NEW.error_stage := coalesce(NEW.error_stage, OLD.current_stage);
    WHEN 'pending' THEN
      -- failed -> pending: a retry. The failure stays in the event log.
      NEW.retry_count := OLD.retry_count + 1;
      NEW.error_message := NULL;
      NEW.error_stage := NULL;
      NEW.failed_at := NULL;
    ELSE
      NULL;
  END CASE;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER enforce_status_lifecycle BEFORE INSERT OR UPDATE ON content_requests
  FOR EACH ROW EXECUTE FUNCTION tg_content_requests__enforce_lifecycle();
--> statement-breakpoint

-- A request's progress, 0-100, from the weights of its stages: done (or
-- skipped) stages count in full, a running or failed stage by its own
-- progress, capped at 99% so that completing it always moves the bar.
CREATE OR REPLACE FUNCTION calculate_request_progress(req_id uuid) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(
    floor(
      100.0 * sum(
        CASE s.status
          WHEN 'completed' THEN d.progress_weight
          WHEN 'skipped' THEN d.progress_weight
          WHEN 'pending' THEN 0
          ELSE d.progress_weight * least(s.progress_percentage, 99) / 100.0
        END
      ) / nullif((SELECT sum(progress_weight) FROM pipeline_stage_definitions), 0)
    )::integer,
    0
  )
  FROM request_stages s
  JOIN pipeline_stage_definitions d ON d.stage_name = s.stage_name
  WHERE s.request_id = req_id
$$;
--> statement-breakpoint

-- Stage rows keep their own times; (re)starting a stage starts its progress
-- afresh, and restarting a failed one counts a retry.
CREATE OR REPLACE FUNCTION tg_request_stages__track_timing() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.status = OLD.status THEN
    RETURN NEW;
  END IF;
  CASE NEW.status
    WHEN 'in_progress' THEN
      NEW.started_at := now();
      NEW.completed_at := NULL;
      NEW.duration_seconds := NULL;
      IF TG_OP = 'UPDATE' THEN
        IF NEW.progress_percentage = OLD.progress_percentage THEN
          NEW.progress_percentage := 0;
        END IF;
        IF OLD.status = 'failed' THEN
          NEW.retry_count := OLD.retry_count + 1;
          NEW.error_message := NULL;
        END IF;
      END IF;
    WHEN 'completed', 'skipped' THEN
      NEW.completed_at := now();
      NEW.progress_percentage := 100;
      NEW.duration_seconds := extract(epoch FROM NEW.completed_at - NEW.started_at);
    WHEN 'failed' THEN
      NEW.duration_seconds := extract(epoch FROM now() - NEW.started_at);
    ELSE
      NULL;
  END CASE;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER track_stage_timing BEFORE INSERT OR UPDATE ON request_stages
  FOR EACH ROW EXECUTE FUNCTION tg_request_stages__track_timing();
--> statement-breakpoint

-- A stage's change drives its request: starting (or skipping) a stage moves
-- the request to the status that stage drives and makes it the current stage;
-- failing it fails the request; completing the last stage completes the
-- request; progress is recomputed every time. The lifecycle trigger refuses
-- what is not allowed (a stage reported on a completed request, say), which
-- rolls back the stage change with it.
--
-- It tells log_status_change() what happened through a transaction-local
-- setting, so the event is typed by the stage's change, not guessed from the
-- request's columns.
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
CREATE OR REPLACE TRIGGER update_progress_on_stage_change AFTER INSERT OR UPDATE ON request_stages
  FOR EACH ROW EXECUTE FUNCTION update_request_progress();
--> statement-breakpoint

-- One request_events row and one notification for every change of status,
-- current stage or progress, so the event log is exactly the live stream.
-- The sequence is max + 1 for the request: the UPDATE that fired this trigger
-- holds the request's row lock until commit, so concurrent writers of one
-- request take their numbers one after another, gap-free and in commit order.
CREATE OR REPLACE FUNCTION log_status_change() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  event_kind request_event_type;
  event_severity_level event_severity := 'info';
  event_message text;
  previous_status content_request_status;
  event_stage varchar;
  stage_event text;
  hinted_stage text;
  next_sequence integer;
  new_event_id bigint;
  new_event_at timestamptz;
BEGIN
  IF TG_OP = 'INSERT' THEN
    event_kind := 'created';
    event_message := 'Request created';
  ELSE
    previous_status := OLD.status;
    stage_event := nullif(current_setting('content_tracker.stage_event', true), '');
    hinted_stage := nullif(current_setting('content_tracker.stage_name', true), '');
    event_kind := CASE
      WHEN NEW.status <> OLD.status AND NEW.status = 'failed' THEN 'failure'
      WHEN NEW.status <> OLD.status AND NEW.status = 'cancelled' THEN 'cancel'
      WHEN NEW.status <> OLD.status AND NEW.status = 'completed' THEN 'completed'
      WHEN NEW.status <> OLD.status AND OLD.status = 'failed' THEN 'retry'
      -- Set by update_request_progress(): a stage started or completed, which
      -- is an event even when the integer progress did not move.
      WHEN stage_event IS NOT NULL THEN stage_event::request_event_type
      WHEN NEW.current_stage IS DISTINCT FROM OLD.current_stage THEN 'stage_started'
      WHEN NEW.status <> OLD.status THEN 'status_change'
      WHEN NEW.progress_percentage <> OLD.progress_percentage THEN 'progress'
    END;
    IF event_kind IS NULL THEN
      RETURN NULL; -- nothing a subscriber follows has changed
    END IF;

    event_severity_level := CASE event_kind
      WHEN 'failure' THEN 'error'::event_severity
      WHEN 'retry' THEN 'warning'::event_severity
      WHEN 'cancel' THEN 'warning'::event_severity
      ELSE 'info'::event_severity
    END;
    event_message := CASE event_kind
      WHEN 'failure' THEN coalesce(NEW.error_message, 'Request failed')
      WHEN 'stage_started' THEN format('Stage %s started', coalesce(hinted_stage, NEW.current_stage))
      WHEN 'stage_completed' THEN format('Stage %s completed', coalesce(hinted_stage, NEW.current_stage))
      WHEN 'progress' THEN format('Progress %s%%', NEW.progress_percentage)
      WHEN 'retry' THEN format('Retry %s', NEW.retry_count)
      ELSE format('Status %s -> %s', OLD.status, NEW.status)
    END;
  END IF;

  -- A stage event is about the stage that changed, which may not be the current one.
  event_stage := CASE
    WHEN event_kind = 'failure' THEN coalesce(NEW.error_stage, NEW.current_stage)
    WHEN event_kind IN ('stage_started', 'stage_completed') THEN coalesce(hinted_stage, NEW.current_stage)
    ELSE NEW.current_stage
  END;

  SELECT coalesce(max(e.sequence), 0) + 1 INTO next_sequence
    FROM request_events e WHERE e.request_id = NEW.id;

  INSERT INTO request_events
    (request_id, sequence, event_type, old_status, new_status, stage, progress_percentage, severity, message)
  VALUES
    (NEW.id, next_sequence, event_kind, previous_status, NEW.status, event_stage,
     NEW.progress_percentage, event_severity_level, event_message)
  RETURNING id, created_at INTO new_event_id, new_event_at;

  -- Small and free of content (no topic, query or error text): any subscriber
  -- allowed to see the request may receive it. Far below the 8000-byte limit.
  PERFORM pg_notify('content_request_events', json_build_object(
    'requestId', NEW.id,
    'eventId', new_event_id::text,
    'sequence', next_sequence,
    'eventType', event_kind,
    'oldStatus', previous_status,
    'newStatus', NEW.status,
    'stage', event_stage,
    'progress', NEW.progress_percentage,
    'studentId', NEW.student_id,
    'organizationId', NEW.organization_id,
    'createdAt', new_event_at
  )::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE TRIGGER log_request_status_changes AFTER INSERT OR UPDATE ON content_requests
  FOR EACH ROW EXECUTE FUNCTION log_status_change();
