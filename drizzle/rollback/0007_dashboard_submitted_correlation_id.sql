-- The dashboard back to the stored key.
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
