-- Fails (restrict) while any request_stages row still names one of these stages.
DELETE FROM pipeline_stage_definitions
WHERE stage_name IN ('validation', 'retrieval', 'script_generation', 'video_generation', 'video_processing');
