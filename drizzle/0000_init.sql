-- Idempotent by hand (drizzle-kit writes plain CREATE): a database made by the FastAPI
-- tutorial already has this schema and these tables, and adopting it must lose nothing.
CREATE SCHEMA IF NOT EXISTS "myapi";
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "myapi"."movies" (
	"movie_id" integer PRIMARY KEY NOT NULL,
	"title" text NOT NULL,
	"released" integer NOT NULL,
	"rating" numeric(2, 1) NOT NULL
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "myapi"."users" (
	"user_id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"email" text NOT NULL,
	"hashed_password" text NOT NULL,
	CONSTRAINT "users_email_unique" UNIQUE("email")
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "users_email_lower_idx" ON "myapi"."users" USING btree (lower("email"));