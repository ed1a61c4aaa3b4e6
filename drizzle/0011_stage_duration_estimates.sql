CREATE TABLE "stage_duration_estimates" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "stage_duration_estimates_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"stage_name" varchar(100) NOT NULL,
	"organization_id" varchar(100),
	"sample_count" integer NOT NULL,
	"median_seconds" numeric(12, 3) NOT NULL,
	"refreshed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "stage_duration_estimates_stage_org_key" UNIQUE NULLS NOT DISTINCT("stage_name","organization_id")
);
--> statement-breakpoint
ALTER TABLE "stage_duration_estimates" ADD CONSTRAINT "stage_duration_estimates_stage_name_fkey" FOREIGN KEY ("stage_name") REFERENCES "public"."pipeline_stage_definitions"("stage_name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "stage_duration_estimates" ADD CONSTRAINT "stage_duration_estimates_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("organization_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "idx_request_stages_completed_recent" ON "request_stages" USING btree ("completed_at" DESC NULLS LAST) WHERE status = 'completed'::content_stage_status;