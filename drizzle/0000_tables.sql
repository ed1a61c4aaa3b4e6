CREATE TYPE "public"."content_request_status" AS ENUM('pending', 'validating', 'retrieving', 'generating_script', 'generating_video', 'processing_video', 'completed', 'failed', 'cancelled');--> statement-breakpoint
CREATE TYPE "public"."content_stage_status" AS ENUM('pending', 'in_progress', 'completed', 'failed', 'skipped');--> statement-breakpoint
CREATE TYPE "public"."event_severity" AS ENUM('debug', 'info', 'warning', 'error');--> statement-breakpoint
CREATE TYPE "public"."request_event_type" AS ENUM('created', 'status_change', 'stage_started', 'stage_completed', 'progress', 'completed', 'failure', 'retry', 'cancel');--> statement-breakpoint
CREATE TABLE "content_requests" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"correlation_id" varchar(255) NOT NULL,
	"student_id" varchar(100) NOT NULL,
	"organization_id" varchar(100),
	"topic" varchar(500) NOT NULL,
	"student_query" text NOT NULL,
	"grade_level" varchar(50),
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"status" "content_request_status" DEFAULT 'pending' NOT NULL,
	"current_stage" varchar(100),
	"progress_percentage" integer DEFAULT 0 NOT NULL,
	"retry_count" integer DEFAULT 0 NOT NULL,
	"result" jsonb,
	"error_message" text,
	"error_stage" varchar(100),
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"failed_at" timestamp with time zone,
	CONSTRAINT "content_requests_correlation_id_key" UNIQUE("correlation_id"),
	CONSTRAINT "content_requests_progress_check" CHECK ("content_requests"."progress_percentage" between 0 and 100),
	CONSTRAINT "content_requests_retry_count_check" CHECK ("content_requests"."retry_count" >= 0)
);
--> statement-breakpoint
CREATE TABLE "organizations" (
	"organization_id" varchar(100) PRIMARY KEY NOT NULL,
	"name" varchar(255) NOT NULL,
	"domain" varchar(255),
	"subscription_tier" varchar(50) DEFAULT 'free',
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pipeline_stage_definitions" (
	"stage_name" varchar(100) PRIMARY KEY NOT NULL,
	"display_name" varchar(255) NOT NULL,
	"stage_order" integer NOT NULL,
	"progress_weight" integer NOT NULL,
	"request_status" "content_request_status" NOT NULL,
	"expected_duration_seconds" integer NOT NULL,
	"description" text,
	CONSTRAINT "pipeline_stage_definitions_stage_order_key" UNIQUE("stage_order"),
	CONSTRAINT "pipeline_stage_definitions_request_status_key" UNIQUE("request_status"),
	CONSTRAINT "pipeline_stage_definitions_weight_check" CHECK ("pipeline_stage_definitions"."progress_weight" >= 0)
);
--> statement-breakpoint
CREATE TABLE "request_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "request_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"request_id" uuid NOT NULL,
	"sequence" integer NOT NULL,
	"event_type" "request_event_type" NOT NULL,
	"old_status" "content_request_status",
	"new_status" "content_request_status" NOT NULL,
	"stage" varchar(100),
	"progress_percentage" integer NOT NULL,
	"severity" "event_severity" DEFAULT 'info' NOT NULL,
	"message" text,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "request_events_request_id_sequence_key" UNIQUE("request_id","sequence")
);
--> statement-breakpoint
CREATE TABLE "request_metrics" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "request_metrics_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"organization_id" varchar(100),
	"metric_hour" timestamp with time zone NOT NULL,
	"total_requests" integer DEFAULT 0 NOT NULL,
	"completed_requests" integer DEFAULT 0 NOT NULL,
	"failed_requests" integer DEFAULT 0 NOT NULL,
	"cancelled_requests" integer DEFAULT 0 NOT NULL,
	"avg_duration_seconds" numeric(12, 3),
	"p95_duration_seconds" numeric(12, 3),
	"error_breakdown" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "request_metrics_org_hour_key" UNIQUE NULLS NOT DISTINCT("organization_id","metric_hour")
);
--> statement-breakpoint
CREATE TABLE "request_stages" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"request_id" uuid NOT NULL,
	"stage_name" varchar(100) NOT NULL,
	"status" "content_stage_status" DEFAULT 'pending' NOT NULL,
	"progress_percentage" integer DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"duration_seconds" numeric(12, 3),
	"error_message" text,
	"retry_count" integer DEFAULT 0 NOT NULL,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "request_stages_request_id_stage_name_key" UNIQUE("request_id","stage_name"),
	CONSTRAINT "request_stages_progress_check" CHECK ("request_stages"."progress_percentage" between 0 and 100)
);
--> statement-breakpoint
CREATE TABLE "users" (
	"user_id" varchar(100) PRIMARY KEY NOT NULL,
	"email" varchar(255),
	"name" varchar(255),
	"role" varchar(50) DEFAULT 'student' NOT NULL,
	"organization_id" varchar(100),
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_role_check" CHECK ("users"."role" in ('student', 'org_admin', 'admin', 'worker'))
);
--> statement-breakpoint
ALTER TABLE "content_requests" ADD CONSTRAINT "content_requests_student_id_fkey" FOREIGN KEY ("student_id") REFERENCES "public"."users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "content_requests" ADD CONSTRAINT "content_requests_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("organization_id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "request_events" ADD CONSTRAINT "request_events_request_id_fkey" FOREIGN KEY ("request_id") REFERENCES "public"."content_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "request_metrics" ADD CONSTRAINT "request_metrics_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("organization_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "request_stages" ADD CONSTRAINT "request_stages_request_id_fkey" FOREIGN KEY ("request_id") REFERENCES "public"."content_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "request_stages" ADD CONSTRAINT "request_stages_stage_name_fkey" FOREIGN KEY ("stage_name") REFERENCES "public"."pipeline_stage_definitions"("stage_name") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("organization_id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "idx_content_requests_correlation" ON "content_requests" USING btree ("correlation_id");--> statement-breakpoint
CREATE INDEX "idx_content_requests_student" ON "content_requests" USING btree ("student_id");--> statement-breakpoint
CREATE INDEX "idx_content_requests_status" ON "content_requests" USING btree ("status");--> statement-breakpoint
CREATE INDEX "idx_content_requests_created" ON "content_requests" USING btree ("created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "idx_content_requests_org" ON "content_requests" USING btree ("organization_id");--> statement-breakpoint
CREATE INDEX "idx_content_requests_correlation_status" ON "content_requests" USING btree ("correlation_id","status");--> statement-breakpoint
CREATE INDEX "idx_content_requests_student_status_created" ON "content_requests" USING btree ("student_id","status","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "idx_content_requests_status_created" ON "content_requests" USING btree ("status","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "idx_content_requests_org_status_created" ON "content_requests" USING btree ("organization_id","status","created_at" DESC NULLS LAST) WHERE organization_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX "idx_content_requests_failed_debugging" ON "content_requests" USING btree ("status","error_stage","failed_at" DESC NULLS LAST) WHERE status = 'failed'::content_request_status;--> statement-breakpoint
CREATE INDEX "idx_content_requests_student_history" ON "content_requests" USING btree ("student_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "idx_content_requests_failed_recent" ON "content_requests" USING btree ("failed_at" DESC NULLS LAST) WHERE status = 'failed'::content_request_status;--> statement-breakpoint
CREATE INDEX "idx_request_events_created" ON "request_events" USING btree ("created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "idx_request_events_type" ON "request_events" USING btree ("event_type");--> statement-breakpoint
CREATE INDEX "idx_request_metrics_hour" ON "request_metrics" USING btree ("metric_hour" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "idx_request_stages_stage_status" ON "request_stages" USING btree ("stage_name","status");--> statement-breakpoint
CREATE INDEX "idx_users_organization" ON "users" USING btree ("organization_id");