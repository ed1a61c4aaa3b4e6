ALTER TABLE "content_requests" DROP COLUMN IF EXISTS "submitted_correlation_id";
