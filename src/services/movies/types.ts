/** The shapes the movies service and its CRUD class exchange with their callers. */
import type { Movie, MovieSortKey, SortOrder } from '../../schemas/movies.js';

export type { Precondition } from '../resource/types.js';

/** A movie with the ETag that a later write must send back in If-Match. */
export interface TaggedMovie {
  movie: Movie;
  etag: string;
}

export interface MoviePage {
  items: Movie[];
  /** The cursor of the next page, when there is one. */
  next?: string;
  total?: number;
}

export interface SeedReport {
  inserted: number;
  total: number;
}

export interface ListFilter {
  releasedFrom?: number;
  releasedTo?: number;
  ratingMin?: number;
  /** Text the title must contain, already escaped for LIKE. */
  titleContains?: string;
}

/**
 * A position in a listing's order: the last movie's sort key and its movie_id (the tie-breaker
 * that makes the order total). Cursors (cursor.ts) carry one between requests.
 */
export interface Position {
  sort: MovieSortKey;
  order: SortOrder;
  /** The last movie's value of the sort key (its movie_id when sorting by id). */
  value: number | string;
  movieId: number;
}

export interface ListPageQuery extends ListFilter {
  sort: MovieSortKey;
  order: SortOrder;
  after?: Position;
  limit: number;
}

/** A bounded count is cheap: past this many matches the first page says nothing of the total. */
export const TOTAL_CAP = 1000;
