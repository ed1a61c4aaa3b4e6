-- Views the dashboards read. OR REPLACE keeps them idempotent.

-- Every request still in flight, with who asked, where it stands and whether
-- its current stage has overrun the stage's expected duration.
CREATE OR REPLACE VIEW active_requests_dashboard AS
SELECT
  r.id,
  r.correlation_id,
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

-- The last 24 hourly buckets of the rollup, with rates.
CREATE OR REPLACE VIEW request_metrics_summary AS
SELECT
  m.metric_hour,
  m.organization_id,
  o.name AS organization_name,
  m.total_requests,
  m.completed_requests,
  m.failed_requests,
  m.cancelled_requests,
  round(100.0 * m.completed_requests / nullif(m.total_requests, 0), 2) AS success_rate,
  round(100.0 * m.failed_requests / nullif(m.total_requests, 0), 2) AS failure_rate,
  m.avg_duration_seconds,
  m.p95_duration_seconds,
  m.error_breakdown
FROM request_metrics m
LEFT JOIN organizations o ON o.organization_id = m.organization_id
-- The current hour and the 23 before it, on UTC hour boundaries whatever the session's time zone.
WHERE m.metric_hour >= date_trunc('hour', now(), 'UTC') - interval '23 hours';
