import { InvalidInputError } from '../exc.js';
import type { MovieSortKey, SortOrder } from '../schemas/movies.js';

/**
 * Keyset pagination cursors: the position after the last movie of a page, as its sort key and
 * its movie_id (the tie-breaker that makes the order total). A page then starts strictly after
 * that position, so rows inserted or deleted between two requests never shift a page: nothing
 * is skipped or repeated, unlike with an offset. The cursor is opaque to clients (base64url
 * JSON) and names its sort and direction, so it cannot be replayed against another order.
 */
export interface Position {
  sort: MovieSortKey;
  order: SortOrder;
  /** The last movie's value of the sort key (its movie_id when sorting by id). */
  value: number | string;
  movieId: number;
}

const MAX_ID = 2_147_483_647;

export function encodeCursor(position: Position): string {
  const { sort, order, value, movieId } = position;
  return Buffer.from(JSON.stringify([sort, order, value, movieId]), 'utf8').toString('base64url');
}

function invalid(reason: string): InvalidInputError {
  return new InvalidInputError(`Invalid cursor: ${reason}`, [
    { field: 'querystring.cursor', message: reason },
  ]);
}

function isId(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_ID;
}

/** The position a cursor names, if it is one we made for this sort and direction. */
export function decodeCursor(cursor: string, sort: MovieSortKey, order: SortOrder): Position {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url');
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid('not a cursor from this API');
  }
  if (!Array.isArray(parsed) || parsed.length !== 4) throw invalid('not a cursor from this API');
  const [cursorSort, cursorOrder, value, movieId] = parsed as unknown[];
  if (cursorSort !== sort || cursorOrder !== order) {
    throw invalid(`made for sort=${String(cursorSort)}&order=${String(cursorOrder)}`);
  }
  if (!isId(movieId)) throw invalid('bad position');
  const valueFits =
    sort === 'title'
      ? // PostgreSQL text cannot hold NUL: such a title was never stored, nor put in a cursor.
        typeof value === 'string' && value.length <= 2000 && !value.includes('\u0000')
      : sort === 'rating'
        ? typeof value === 'number' && Number.isFinite(value) && value >= -100 && value <= 100
        : Number.isInteger(value) && Math.abs(value as number) <= MAX_ID;
  if (!valueFits) throw invalid('bad position');
  if (sort === 'movie_id' && value !== movieId) throw invalid('bad position');
  return { sort, order, value: value as number | string, movieId };
}
