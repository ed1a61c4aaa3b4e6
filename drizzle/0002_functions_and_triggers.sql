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

-- The status lifecycle (DESIGN.md §5): forward one stage at a time, any
-- non-terminal status to failed or cancelled, failed back to pending on retry.
CREATE OR REPLACE FUNCTION content_request_transition_allowed(
  from_status content_request_status,
  to_status content_request_status
) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT from_status = to_status OR coalesce(CASE
    WHEN to_status IN ('failed', 'cancelled')
      THEN from_status NOT IN ('completed', 'failed', 'cancelled')
    WHEN from_status = 'failed'
      THEN to_status = 'pending'
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

  IF NOT content_request_transition_allowed(OLD.status, NEW.status) THEN
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
-- skipped) stages count in full, the running stage by its own progress, capped
-- at 99% so that completing it always moves the bar.
CREATE OR REPLACE FUNCTION calculate_request_progress(req_id uuid) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(
    floor(
      100.0 * sum(
        CASE s.status
          WHEN 'completed' THEN d.progress_weight
          WHEN 'skipped' THEN d.progress_weight
          WHEN 'in_progress' THEN d.progress_weight * least(s.progress_percentage, 99) / 100.0
          ELSE 0
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

-- Stage rows keep their own times; restarting a failed stage counts a retry.
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
      IF TG_OP = 'UPDATE' AND OLD.status = 'failed' THEN
        NEW.retry_count := OLD.retry_count + 1;
        NEW.error_message := NULL;
      END IF;
    WHEN 'completed', 'skipped' THEN
      NEW.completed_at := coalesce(NEW.completed_at, now());
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

-- A stage's change drives its request: starting a stage moves the request to
-- the status that stage drives and makes it the current stage; failing it
-- fails the request; completing the last stage completes the request; progress
-- is recomputed every time. The lifecycle trigger refuses what is not allowed
-- (a stage reported on a completed request, say), which rolls back the stage
-- change with it.
CREATE OR REPLACE FUNCTION update_request_progress() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  driven_status content_request_status;
  is_last_stage boolean;
BEGIN
  IF TG_OP = 'UPDATE'
     AND NEW.status = OLD.status
     AND NEW.progress_percentage = OLD.progress_percentage THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' AND NEW.status = 'pending' THEN
    RETURN NULL;
  END IF;

  SELECT d.request_status,
         d.stage_order = (SELECT max(stage_order) FROM pipeline_stage_definitions)
    INTO driven_status, is_last_stage
    FROM pipeline_stage_definitions d
   WHERE d.stage_name = NEW.stage_name;

  UPDATE content_requests r SET
    status = CASE
      WHEN NEW.status = 'in_progress' THEN driven_status
      WHEN NEW.status = 'failed' THEN 'failed'::content_request_status
      WHEN NEW.status IN ('completed', 'skipped') AND is_last_stage THEN 'completed'::content_request_status
      ELSE r.status
    END,
    current_stage = CASE WHEN NEW.status = 'in_progress' THEN NEW.stage_name ELSE r.current_stage END,
    error_stage = CASE WHEN NEW.status = 'failed' THEN NEW.stage_name ELSE r.error_stage END,
    error_message = CASE WHEN NEW.status = 'failed' THEN NEW.error_message ELSE r.error_message END,
    progress_percentage = calculate_request_progress(NEW.request_id)
  WHERE r.id = NEW.request_id;
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
  next_sequence integer;
  new_event_id bigint;
  new_event_at timestamptz;
BEGIN
  IF TG_OP = 'INSERT' THEN
    event_kind := 'created';
    event_message := 'Request created';
  ELSE
    previous_status := OLD.status;
    IF NEW.status <> OLD.status THEN
      event_kind := CASE
        WHEN NEW.status = 'failed' THEN 'failure'
        WHEN NEW.status = 'cancelled' THEN 'cancel'
        WHEN NEW.status = 'completed' THEN 'completed'
        WHEN OLD.status = 'failed' THEN 'retry'
        WHEN NEW.current_stage IS DISTINCT FROM OLD.current_stage THEN 'stage_started'
        ELSE 'status_change'
      END;
    ELSIF NEW.current_stage IS DISTINCT FROM OLD.current_stage THEN
      event_kind := 'stage_started';
    ELSIF NEW.progress_percentage <> OLD.progress_percentage THEN
      event_kind := CASE WHEN EXISTS (
          SELECT 1 FROM request_stages s
           WHERE s.request_id = NEW.id AND s.stage_name = NEW.current_stage AND s.status = 'completed'
        ) THEN 'stage_completed' ELSE 'progress' END;
    ELSE
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
      WHEN 'stage_started' THEN format('Stage %s started', NEW.current_stage)
      WHEN 'stage_completed' THEN format('Stage %s completed', NEW.current_stage)
      WHEN 'progress' THEN format('Progress %s%%', NEW.progress_percentage)
      WHEN 'retry' THEN format('Retry %s', NEW.retry_count)
      ELSE format('Status %s -> %s', OLD.status, NEW.status)
    END;
  END IF;

  SELECT coalesce(max(e.sequence), 0) + 1 INTO next_sequence
    FROM request_events e WHERE e.request_id = NEW.id;

  INSERT INTO request_events
    (request_id, sequence, event_type, old_status, new_status, stage, progress_percentage, severity, message)
  VALUES
    (NEW.id, next_sequence, event_kind, previous_status, NEW.status, NEW.current_stage,
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
    'stage', NEW.current_stage,
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
