-- Personal access tokens (each a login session of its own, in auth_sessions) and the salt a
-- refresh token's successor is derived from, for MYAPI_REFRESH_REUSE_SECONDS. drizzle-kit generated.
CREATE TABLE "myapi"."personal_access_tokens" (
	"token_id" uuid PRIMARY KEY NOT NULL,
	"user_id" integer NOT NULL,
	"name" text NOT NULL,
	"token_hash" text NOT NULL,
	"prefix" text NOT NULL,
	"scope" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	CONSTRAINT "personal_access_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
ALTER TABLE "myapi"."refresh_tokens" ADD COLUMN "successor_salt" text;--> statement-breakpoint
ALTER TABLE "myapi"."personal_access_tokens" ADD CONSTRAINT "personal_access_tokens_token_id_auth_sessions_session_id_fk" FOREIGN KEY ("token_id") REFERENCES "myapi"."auth_sessions"("session_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "myapi"."personal_access_tokens" ADD CONSTRAINT "personal_access_tokens_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "myapi"."users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "personal_access_tokens_user_idx" ON "myapi"."personal_access_tokens" USING btree ("user_id");