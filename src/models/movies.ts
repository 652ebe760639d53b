/** Drizzle table of the movie catalogue, and the columns hot reads select. */
import { sql } from 'drizzle-orm';
import { index, integer, numeric, text } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';

export const movies = myapiSchema.table(
  'movies',
  {
    movie_id: integer('movie_id').primaryKey(),
    title: text('title').notNull(),
    released: integer('released').notNull(),
    // Both drivers return NUMERIC as a string; mode 'number' makes it the JSON number clients expect.
    rating: numeric('rating', { precision: 2, scale: 1, mode: 'number' }).notNull(),
    // The version an ETag names: the MD5 of id/year/rating/title. PostgreSQL keeps it on every
    // write, whoever writes (the FastAPI app too), so a read fetches it instead of computing it
    // on every read. Not part of a movie: select `movieColumns` for those.
    version: text('version')
      .notNull()
      .generatedAlwaysAs(
        sql`md5(movie_id::text || '/' || released::text || '/' || rating::text || '/' || title)`,
      ),
  },
  // Created by drizzle/0002_movies_catalogue.sql (hand-written); declared here so the model
  // says which queries are indexed. Each sort key is followed by movie_id, the keyset
  // tie-breaker, then by the filter columns, which the scan checks inside the index.
  (table) => [
    index('movies_id_page_idx').on(table.movie_id, table.released, table.rating),
    index('movies_title_page_idx').on(table.title, table.movie_id, table.released, table.rating),
    index('movies_released_page_idx').on(table.released, table.movie_id, table.rating),
    index('movies_rating_page_idx').on(table.rating, table.movie_id, table.released),
    index('movies_title_search_idx').using(
      'gin',
      sql`${searchKey(table.title)} public.gin_trgm_ops`,
    ),
  ],
);

/** A movie's own columns, as the API shows it: every column but the row's version. */
export const movieColumns = {
  movie_id: movies.movie_id,
  title: movies.title,
  released: movies.released,
  rating: movies.rating,
};

/** The case- and accent-folded form of a text, as the title search index stores it. */
export function searchKey(value: unknown) {
  return sql`myapi.search_key(${value})`;
}
