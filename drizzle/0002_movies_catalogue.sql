-- Written by hand (drizzle-kit cannot express extensions or functions), idempotent like
-- 0000_init. Title search is case- and accent-insensitive through myapi.search_key(); the
-- other indexes serve /movies/new and the keyset pages of GET /movies in each sort order.
CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;
--> statement-breakpoint
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
--> statement-breakpoint
-- unaccent() is only STABLE (its dictionary could change), so it cannot appear in an index
-- expression; naming the dictionary explicitly makes this wrapper safe to declare IMMUTABLE.
CREATE OR REPLACE FUNCTION "myapi"."search_key"(value text) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
	AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, value)) $$;
--> statement-breakpoint
-- /movies/new walks movie_id order and checks released and rating inside the index, so only
-- matching rows are fetched from the table and the scan stops after one page.
CREATE INDEX IF NOT EXISTS "movies_id_released_rating_idx" ON "myapi"."movies" USING btree ("movie_id","released","rating");
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "movies_title_id_idx" ON "myapi"."movies" USING btree ("title","movie_id");
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "movies_released_id_idx" ON "myapi"."movies" USING btree ("released","movie_id");
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "movies_rating_id_idx" ON "myapi"."movies" USING btree ("rating","movie_id");
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "movies_title_search_idx" ON "myapi"."movies" USING gin ("myapi"."search_key"("title") public.gin_trgm_ops);
