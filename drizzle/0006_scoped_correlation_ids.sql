-- A student's (or org admin's) idempotency key is stored scoped to them in
-- correlation_id (content_requests_correlation_id_key stays global); the key as
-- they gave it is kept here. NULL: correlation_id is the key itself.
ALTER TABLE "content_requests" ADD COLUMN "submitted_correlation_id" varchar(255);
