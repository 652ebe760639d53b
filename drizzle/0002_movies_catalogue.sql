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
-- One index per sort order of GET /movies, each (key, movie_id, other filter columns): the
-- keyset condition is a range on the first two, and the year and rating filters are checked
-- inside the index, so a page fetches only the rows it returns and a bounded count of
-- matches needs no table access. movie_id order also serves /movies/new.
CREATE INDEX IF NOT EXISTS "movies_id_page_idx" ON "myapi"."movies" USING btree ("movie_id","released","rating");
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "movies_title_page_idx" ON "myapi"."movies" USING btree ("title","movie_id","released","rating");
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "movies_released_page_idx" ON "myapi"."movies" USING btree ("released","movie_id","rating");
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "movies_rating_page_idx" ON "myapi"."movies" USING btree ("rating","movie_id","released");
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "movies_title_search_idx" ON "myapi"."movies" USING gin ("myapi"."search_key"("title") public.gin_trgm_ops);
