CREATE TABLE "myapi"."audit_events" (
	"audit_id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"event" text NOT NULL,
	"outcome" text NOT NULL,
	"reason" text,
	"user_id" integer,
	"actor_id" integer,
	"client_address" text,
	"user_agent" text,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
ALTER TABLE "myapi"."auth_sessions" ADD COLUMN "last_used_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "myapi"."auth_sessions" ADD COLUMN "client_address" text;--> statement-breakpoint
ALTER TABLE "myapi"."auth_sessions" ADD COLUMN "user_agent" text;--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "myapi"."audit_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "audit_events_user_idx" ON "myapi"."audit_events" USING btree ("user_id","audit_id");--> statement-breakpoint
CREATE INDEX "audit_events_event_idx" ON "myapi"."audit_events" USING btree ("event","audit_id");