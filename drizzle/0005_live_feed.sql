-- The live feed's cursor, and notifications sent at commit.
--
-- A subscriber following many requests resumes from a cursor. request_events.id
-- cannot be that cursor: ids are taken when a row is inserted, so a
-- transaction holding id 10 may commit after the one holding id 11, and a
-- client that saw 11 would never be sent 10. So every event also gets a
-- feed_position at commit time, from a deferred trigger that takes one
-- transaction-level advisory lock: positions are handed out in commit order,
-- and once position P is visible every smaller position is visible too (or
-- was never committed). The notification moves here as well, so it carries
-- the position. Notifying commits are serialized by PostgreSQL anyway (the
-- NOTIFY queue lock), so the lock adds little.

CREATE SEQUENCE IF NOT EXISTS request_events_feed_position_seq AS bigint;
--> statement-breakpoint

-- Events written before this migration keep their order.
UPDATE request_events e SET feed_position = numbered.position
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS position
          FROM request_events WHERE feed_position IS NULL) numbered
 WHERE e.id = numbered.id
   AND NOT EXISTS (SELECT 1 FROM request_events WHERE feed_position IS NOT NULL);
--> statement-breakpoint
SELECT setval('request_events_feed_position_seq', coalesce(max(feed_position), 0) + 1, false) FROM request_events;
--> statement-breakpoint

-- log_status_change() as in 0002, without its pg_notify.
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
     NEW.progress_percentage, event_severity_level, event_message);

  RETURN NULL;
END
$$;
--> statement-breakpoint

CREATE OR REPLACE FUNCTION tg_request_events__publish() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  event_position bigint;
  request_student varchar;
  request_organization varchar;
BEGIN
  -- Held until this transaction has committed and become visible.
  PERFORM pg_advisory_xact_lock(hashtext('content-request-tracker:feed-position'));
  event_position := nextval('request_events_feed_position_seq');
  UPDATE request_events SET feed_position = event_position WHERE id = NEW.id;
  SELECT r.student_id, r.organization_id INTO request_student, request_organization
    FROM content_requests r WHERE r.id = NEW.request_id;

  -- Small and free of content (no topic, query or error text): any subscriber
  -- allowed to see the request may receive it. Far below the 8000-byte limit.
  PERFORM pg_notify('content_request_events', json_build_object(
    'requestId', NEW.request_id,
    'eventId', NEW.id::text,
    'position', event_position::text,
    'sequence', NEW.sequence,
    'eventType', NEW.event_type,
    'oldStatus', NEW.old_status,
    'newStatus', NEW.new_status,
    'stage', NEW.stage,
    'progress', NEW.progress_percentage,
    'studentId', request_student,
    'organizationId', request_organization,
    'createdAt', NEW.created_at
  )::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- Constraint triggers have no OR REPLACE: drop and create keeps it rerunnable.
DROP TRIGGER IF EXISTS publish_request_event ON request_events;
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER publish_request_event AFTER INSERT ON request_events
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION tg_request_events__publish();
