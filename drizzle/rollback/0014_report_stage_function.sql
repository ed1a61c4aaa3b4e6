DROP FUNCTION IF EXISTS report_stage(uuid, varchar, content_stage_status, integer, text, jsonb, content_request_status[]);
