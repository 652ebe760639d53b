/** Keyset pagination cursors for the movie listings: encoding, and checked decoding. */
import { InvalidInputError } from '../../exc.js';
import type { MovieSortKey, SortOrder } from '../../schemas/movies.js';
import type { Position } from './types.js';

/*
 * A cursor is the position after the last movie of a page. A page then starts strictly after
 * that position, so rows inserted or deleted between two requests never shift a page: nothing
 * is skipped or repeated, unlike with an offset. The cursor is opaque to clients (base64url
 * JSON) and names its sort and direction, so it cannot be replayed against another order.
 */

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

/** Why a title position cannot be one of ours, or undefined when it can. */
function badTitle(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2000) return 'bad position';
  // PostgreSQL text cannot hold U+0000: sent on, it fails as an encoding error.
  if (value.includes('\u0000')) return 'bad position: the title holds a NUL character';
  return undefined;
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
  const problem =
    sort === 'title'
      ? badTitle(value)
      : sort === 'rating'
        ? typeof value === 'number' && Number.isFinite(value) && value >= -100 && value <= 100
          ? undefined
          : 'bad position'
        : Number.isInteger(value) && Math.abs(value as number) <= MAX_ID
          ? undefined
          : 'bad position';
  if (problem !== undefined) throw invalid(problem);
  if (sort === 'movie_id' && value !== movieId) throw invalid('bad position');
  return { sort, order, value: value as number | string, movieId };
}
