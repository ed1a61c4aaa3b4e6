DROP TRIGGER IF EXISTS publish_request_event ON request_events;
--> statement-breakpoint
DROP FUNCTION IF EXISTS tg_request_events__publish();
--> statement-breakpoint
DROP SEQUENCE IF EXISTS request_events_feed_position_seq;
--> statement-breakpoint
-- log_status_change() as 0002 left it: it notifies again.
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
