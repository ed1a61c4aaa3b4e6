-- The pipeline's stages, in order. Weights sum to 100 (calculate_request_progress
-- normalises by their sum, so operators may retune them). DO NOTHING keeps an
-- operator's edits if this ever runs again.
INSERT INTO pipeline_stage_definitions
  (stage_name, display_name, stage_order, progress_weight, request_status, expected_duration_seconds, description)
VALUES
  ('validation',        'Validating request',  1,  5, 'validating',         30, 'Checks that the request is answerable and suits the grade level'),
  ('retrieval',         'Retrieving sources',  2, 15, 'retrieving',        120, 'Retrieves source material for the topic (RAG)'),
  ('script_generation', 'Writing the script',  3, 25, 'generating_script', 300, 'Generates the lesson script from the retrieved material'),
  ('video_generation',  'Generating video',    4, 45, 'generating_video',  900, 'Renders the video from the script'),
  ('video_processing',  'Processing video',    5, 10, 'processing_video',  300, 'Encodes, captions and publishes the video')
ON CONFLICT (stage_name) DO NOTHING;
