/** MovieCRUD: every query on the movies table, its hot reads as prepared statements. */
import {
  and,
  asc,
  count,
  desc,
  eq,
  gte,
  lte,
  max,
  or,
  sql,
  type Placeholder,
  type SQL,
} from 'drizzle-orm';
import { queryRows, type Executor } from '../../backend/database.js';
import { movieColumns, movies, searchKey } from '../../models/movies.js';
import type { Movie, MovieSortKey } from '../../schemas/movies.js';
import { AppCRUD } from '../base.js';
import type { ListFilter, ListPageQuery, Precondition, TaggedMovie } from './types.js';

type Value = number | Placeholder;

/** The filters, for a value now or a placeholder of a prepared statement. */
const idIs = (id: Value) => eq(movies.movie_id, id);
const releasedSince = (year: Value, rating: Value) =>
  and(gte(movies.released, year), gte(movies.rating, rating));

/**
 * The versioned reads and the writes return a movie with its version, the digest its ETag names
 * (kept by PostgreSQL in the row: models/movies.ts). A conditional write checks it in its own
 * WHERE clause, atomically.
 */
const versionedColumns = { ...movieColumns, version: movies.version };

/** A movie row with its version, as the tagged reads and the writes return it. */
type VersionedRow = Movie & { version: string };

function tagged({ version, ...movie }: VersionedRow): TaggedMovie {
  return { movie, etag: `"${version}"` };
}

const SORT_COLUMNS = {
  movie_id: movies.movie_id,
  title: movies.title,
  released: movies.released,
  rating: movies.rating,
} as const;

const CASTS: Record<MovieSortKey, SQL> = {
  movie_id: sql`int`,
  title: sql`text`,
  released: sql`int`,
  rating: sql`numeric`,
};

/** LIKE's wildcards and escape character, taken literally in a search. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export class MovieCRUD extends AppCRUD<typeof movies> {
  /**
   * The read paths every client hits, as named prepared statements: Drizzle builds the SQL once,
   * and PostgreSQL parses and plans it once per connection instead of per request.
   */
  private readonly prepared = {
    // By id, the reads of one turn of the event loop share a query: under load most of a lookup's
    // cost is its round trip (the driver, the pool, PostgreSQL's per-statement work).
    byId: this.preparedLookup('movies_by_id', versionedColumns, 'movie_id'),
    // /movies/new in (released, movie_id) order: movies_released_page_idx yields the rows in that
    // order from the first year on and checks the rating inside the index, so one plan suits
    // every value and a page stops early. In movie_id order no plan did: walking the ids costs
    // far more than sorting the few matches of a narrow filter, and sorting far more than walking
    // for a broad one, so the statement had to be planned per call.
    // Many clients ask for the same page at once (the first one above all): in one turn of the
    // event loop, they share its query (sameTurn), and its rows.
    releasedSince: this.sameTurn(
      this.preparedRows('movies_released_since', movieColumns, (fields) =>
        this.db
          .select(fields)
          .from(movies)
          .where(releasedSince(sql.placeholder('year'), sql.placeholder('rating')))
          .orderBy(asc(movies.released), asc(movies.movie_id))
          .limit(sql.placeholder('limit')),
      ),
    ),
    // A later page starts strictly after the cursor's (released, movie_id), which the index
    // answers as a range; the year is implied, as the service never sends a cursor before it.
    releasedSinceAfter: this.sameTurn(
      this.preparedRows('movies_released_since_after', movieColumns, (fields) =>
        this.db
          .select(fields)
          .from(movies)
          .where(
            and(
              sql`(${movies.released}, ${movies.movie_id}) > (${sql.placeholder('released')}::int, ${sql.placeholder('after')}::int)`,
              gte(movies.rating, sql.placeholder('rating')),
            ),
          )
          .orderBy(asc(movies.released), asc(movies.movie_id))
          .limit(sql.placeholder('limit')),
      ),
    ),
  };

  /** The movie with its ETag, or undefined when there is none. */
  async getTagged(movieId: number): Promise<TaggedMovie | undefined> {
    const row = await this.prepared.byId(movieId);
    return row === undefined ? undefined : tagged(row);
  }

  /**
   * Up to `limit` movies released >= year with rating >= minRating, in (released, movie_id)
   * order, starting strictly after `after` when given (a position at or after the year). The
   * callers of the same page in one event-loop turn get the same rows: read, never change them.
   */
  releasedSince(
    year: number,
    minRating: number,
    after: { released: number; movieId: number } | undefined,
    limit: number,
  ): Promise<Movie[]> {
    if (after === undefined) return this.prepared.releasedSince({ year, rating: minRating, limit });
    return this.prepared.releasedSinceAfter({
      released: after.released,
      after: after.movieId,
      rating: minRating,
      limit,
    });
  }

  private filterSql(filter: ListFilter): SQL | undefined {
    const { releasedFrom, releasedTo, ratingMin, titleContains } = filter;
    return and(
      releasedFrom === undefined ? undefined : gte(movies.released, releasedFrom),
      releasedTo === undefined ? undefined : lte(movies.released, releasedTo),
      ratingMin === undefined ? undefined : gte(movies.rating, ratingMin),
      titleContains === undefined
        ? undefined
        : sql`${searchKey(movies.title)} like '%' || ${searchKey(titleContains)} || '%'`,
    );
  }

  /** One page in (sort, movie_id) order, starting strictly after `after`. */
  page(query: ListPageQuery, tx?: Executor): Promise<Movie[]> {
    const column = SORT_COLUMNS[query.sort];
    const direction = query.order === 'asc' ? asc : desc;
    const { after } = query;
    let keyset: SQL | undefined;
    if (after !== undefined) {
      // A row comparison, which the (key, movie_id) index answers as a range.
      const op = query.order === 'asc' ? sql`>` : sql`<`;
      keyset =
        query.sort === 'movie_id'
          ? sql`${movies.movie_id} ${op} ${after.movieId}`
          : sql`(${column}, ${movies.movie_id}) ${op} (${after.value}::${CASTS[query.sort]}, ${after.movieId}::int)`;
    }
    const order =
      query.sort === 'movie_id'
        ? [direction(column)]
        : [direction(column), direction(movies.movie_id)];
    return this.on(tx)
      .select(movieColumns)
      .from(movies)
      .where(and(this.filterSql(query), keyset))
      .orderBy(...order)
      .limit(query.limit);
  }

  /** How many movies match, counting no further than `cap` (so it stays cheap at any size). */
  async countUpTo(filter: ListFilter, cap: number, tx?: Executor): Promise<number> {
    const matching = this.on(tx)
      .select({ one: sql`1` })
      .from(movies)
      .where(this.filterSql(filter))
      .limit(cap)
      .as('matching');
    const [row] = await this.on(tx).select({ n: count() }).from(matching);
    return row?.n ?? 0;
  }

  /** Inserts the movie unless its id is taken; undefined when it was. */
  async insert(movie: Movie, tx?: Executor): Promise<TaggedMovie | undefined> {
    const [row] = await this.on(tx)
      .insert(movies)
      .values(movie)
      .onConflictDoNothing({ target: movies.movie_id })
      .returning(versionedColumns);
    return row === undefined ? undefined : tagged(row);
  }

  private matches(movieId: number, expected: Precondition): SQL | undefined {
    if (expected === 'any') return idIs(movieId);
    // Only weak tags were sent: they never match a write, and or() of nothing would match all.
    if (expected.length === 0) return and(idIs(movieId), sql`false`);
    return and(idIs(movieId), or(...expected.map((tag) => eq(movies.version, tag))));
  }

  /**
   * Changes the movie only if its current version is one of `expected`, in the UPDATE's own
   * WHERE: a concurrent writer's change makes this one match nothing instead of overwriting it.
   */
  async updateIf(
    movieId: number,
    expected: Precondition,
    changes: Partial<Omit<Movie, 'movie_id'>>,
    tx?: Executor,
  ): Promise<TaggedMovie | undefined> {
    const [row] = await this.on(tx)
      .update(movies)
      .set(changes)
      .where(this.matches(movieId, expected))
      .returning(versionedColumns);
    return row === undefined ? undefined : tagged(row);
  }

  async deleteIf(movieId: number, expected: Precondition, tx?: Executor): Promise<boolean> {
    const rows = await this.on(tx)
      .delete(movies)
      .where(this.matches(movieId, expected))
      .returning({ id: movies.movie_id });
    return rows.length > 0;
  }

  /**
   * Inserts a batch in one statement (four arrays unnested: one round trip for thousands of rows,
   * with no per-row parameters); rows whose id is taken are skipped. Returns the ids inserted.
   */
  async insertBatch(list: readonly Movie[], tx?: Executor): Promise<Set<number>> {
    const rows = await queryRows<{ movie_id: number }>(
      this.on(tx),
      sql`insert into ${movies} (movie_id, title, released, rating)
          select * from unnest(${sql.param(list.map((m) => m.movie_id))}::int[],
                               ${sql.param(list.map((m) => m.title))}::text[],
                               ${sql.param(list.map((m) => m.released))}::int[],
                               ${sql.param(list.map((m) => m.rating.toFixed(1)))}::numeric[])
          on conflict (movie_id) do nothing
          returning movie_id`,
    );
    return new Set(rows.map((row) => row.movie_id));
  }

  async count(tx?: Executor): Promise<number> {
    const [row] = await this.on(tx).select({ n: count() }).from(movies);
    return row?.n ?? 0;
  }

  /**
   * Gathers the table's statistics now rather than when autovacuum next looks (up to a minute
   * later): the listing's per-call plans choose their index from them, and so do the first
   * plans a connection makes for /movies/new.
   */
  async analyze(): Promise<void> {
    await this.db.execute(sql`analyze ${movies}`);
  }

  async maxId(tx?: Executor): Promise<number> {
    const [row] = await this.on(tx)
      .select({ id: max(movies.movie_id) })
      .from(movies);
    return row?.id ?? 0;
  }

  /** Inserts the movies whose ids are free; returns how many were new. */
  async addMissing(list: readonly Movie[], tx?: Executor): Promise<number> {
    const rows = await this.on(tx)
      .insert(movies)
      .values([...list])
      .onConflictDoNothing({ target: movies.movie_id })
      .returning({ id: movies.movie_id });
    return rows.length;
  }

  /**
   * Generates movies firstId..lastId inside PostgreSQL: deterministic titles, years 1920-2025
   * and ratings 1.0-9.9 derived from the id, so a million rows need no round trips per row.
   */
  async addSynthetic(firstId: number, lastId: number, tx?: Executor): Promise<void> {
    await this.on(tx).execute(sql`
      insert into ${movies} (movie_id, title, released, rating)
      select g, 'Synthetic movie ' || g,
             1920 + (hashint4(g) & 1023) % 106,
             (10 + ((hashint4(g) >> 10) & 1023) % 90) / 10.0
      from generate_series(${firstId}::int, ${lastId}::int) as g`);
  }
}
