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
CREATE TABLE "myapi"."mfa_challenges" (
	"token_hash" text PRIMARY KEY NOT NULL,
	"user_id" integer NOT NULL,
	"scope" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"used_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "myapi"."mfa_factors" (
	"user_id" integer PRIMARY KEY NOT NULL,
	"secret_sealed" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"confirmed_at" timestamp with time zone,
	"last_step" bigint,
	"failures" integer DEFAULT 0 NOT NULL,
	"blocked_until" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "myapi"."mfa_recovery_codes" (
	"user_id" integer NOT NULL,
	"code_hash" text NOT NULL,
	"used_at" timestamp with time zone,
	CONSTRAINT "mfa_recovery_codes_user_id_code_hash_pk" PRIMARY KEY("user_id","code_hash")
);
--> statement-breakpoint
ALTER TABLE "myapi"."auth_sessions" ADD COLUMN "last_used_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "myapi"."auth_sessions" ADD COLUMN "client_address" text;--> statement-breakpoint
ALTER TABLE "myapi"."auth_sessions" ADD COLUMN "user_agent" text;--> statement-breakpoint
ALTER TABLE "myapi"."mfa_challenges" ADD CONSTRAINT "mfa_challenges_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "myapi"."users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "myapi"."mfa_factors" ADD CONSTRAINT "mfa_factors_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "myapi"."users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "myapi"."mfa_recovery_codes" ADD CONSTRAINT "mfa_recovery_codes_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "myapi"."users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "myapi"."audit_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "audit_events_user_idx" ON "myapi"."audit_events" USING btree ("user_id","audit_id");--> statement-breakpoint
CREATE INDEX "audit_events_event_idx" ON "myapi"."audit_events" USING btree ("event","audit_id");--> statement-breakpoint
CREATE INDEX "mfa_challenges_user_idx" ON "myapi"."mfa_challenges" USING btree ("user_id");