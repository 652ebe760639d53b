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
import { queryRows, type AppTx, type Executor } from '../backend/database.js';
import { DEMO_MOVIES } from '../data/demo_movies.js';
import {
  ConflictError,
  InvalidInputError,
  NotFoundError,
  PreconditionFailedError,
  PreconditionRequiredError,
} from '../exc.js';
import { movieColumns, movies, searchKey } from '../models/movies.js';
import type {
  Movie,
  MovieCreate,
  MovieListQuery,
  MoviePatch,
  MovieReplace,
  MovieSortKey,
  NewMoviesQuery,
  SortOrder,
} from '../schemas/movies.js';
import { AppCRUD, AppService, type ServiceContext } from './base.js';
import {
  checkHeader,
  CsvError,
  CsvParser,
  csvLine,
  CSV_HEADER,
  movieFromRecord,
} from './movie_csv.js';
import { decodeCursor, encodeCursor, type Position } from './movie_cursor.js';

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

/** Which stored versions a write may replace: any (`*`), or one of these digests (unquoted tags). */
export type Expected = 'any' | readonly string[];

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

export interface ListFilter {
  releasedFrom?: number;
  releasedTo?: number;
  ratingMin?: number;
  /** Text the title must contain, already escaped for LIKE. */
  titleContains?: string;
}

export interface ListPageQuery extends ListFilter {
  sort: MovieSortKey;
  order: SortOrder;
  after?: Position;
  limit: number;
}

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
    // ten times more than sorting the few matches of a narrow filter, and sorting costs far more
    // than walking for a broad one at a million rows, so the statement had to be planned per
    // call (~40 us of PostgreSQL CPU each).
    releasedSince: this.preparedRows('movies_released_since', movieColumns, (fields) =>
      this.db
        .select(fields)
        .from(movies)
        .where(releasedSince(sql.placeholder('year'), sql.placeholder('rating')))
        .orderBy(asc(movies.released), asc(movies.movie_id))
        .limit(sql.placeholder('limit')),
    ),
    // A later page starts strictly after the cursor's (released, movie_id), which the index
    // answers as a range; the year is implied, as the service never sends a cursor before it.
    releasedSinceAfter: this.preparedRows('movies_released_since_after', movieColumns, (fields) =>
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
  };

  /** The movie with its ETag, or undefined when there is none. */
  async getTagged(movieId: number): Promise<TaggedMovie | undefined> {
    const row = await this.prepared.byId(movieId);
    return row === undefined ? undefined : tagged(row);
  }

  /**
   * Up to `limit` movies released >= year with rating >= minRating, in (released, movie_id)
   * order, starting strictly after `after` when given (a position at or after the year).
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

  private matches(movieId: number, expected: Expected): SQL | undefined {
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
    expected: Expected,
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

  async deleteIf(movieId: number, expected: Expected, tx?: Executor): Promise<boolean> {
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

export interface SeedReport {
  inserted: number;
  total: number;
}

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

/** A bounded count is cheap: past this many matches the first page says nothing of the total. */
export const TOTAL_CAP = 1000;

/** The strong entity tags of an If-Match header, or 'any' for `*`; weak tags never match. */
export function parseIfMatch(header: string | undefined): Expected {
  if (header === undefined || header.trim() === '') {
    throw new PreconditionRequiredError(
      'This write needs an If-Match header: the ETag of the movie as you last read it, or *',
    );
  }
  if (header.trim() === '*') return 'any';
  const tags = header.match(/(W\/)?"[^"]*"/g) ?? [];
  const strong = tags.filter((tag) => !tag.startsWith('W/'));
  if (tags.length === 0) {
    throw new InvalidInputError('If-Match must be * or a list of quoted ETags', [
      { field: 'headers.if-match', message: 'must be * or quoted ETags' },
    ]);
  }
  // The SQL digest is the tag without its quotes.
  return strong.map((tag) => tag.slice(1, -1));
}

function checkRating(rating: number | undefined): void {
  // NUMERIC(2,1) would silently round 8.25; one decimal is the contract.
  if (rating !== undefined && Math.round(rating * 10) / 10 !== rating) {
    throw new InvalidInputError('Invalid request: body.rating must have at most one decimal', [
      { field: 'body.rating', message: 'must have at most one decimal' },
    ]);
  }
}

export class MovieService extends AppService {
  private readonly crud: MovieCRUD;

  constructor(context: ServiceContext) {
    super(context);
    this.crud = new MovieCRUD(context, movies);
  }

  /** A movie with the ETag that a later write must send back in If-Match. */
  async getTagged(movieId: number): Promise<TaggedMovie> {
    const found = await this.crud.getTagged(movieId);
    if (found === undefined) throw new NotFoundError(`Movie ${movieId} not found`);
    return found;
  }

  /**
   * One page of /movies/new, in (released, movie_id) order. Asks for one row more than the page,
   * so the next page is offered only when it exists. Its cursor is a position in that order, the
   * same as GET /movies?sort=released gives. A cursor before the year (the client changed the
   * year) means the range's start, so no page ever holds a movie released before the year.
   */
  async releasedSince(query: NewMoviesQuery): Promise<MoviePage> {
    const position =
      query.cursor === undefined ? undefined : decodeCursor(query.cursor, 'released', 'asc');
    const after =
      position === undefined || (position.value as number) < query.year
        ? undefined
        : { released: position.value as number, movieId: position.movieId };
    const rows = await this.crud.releasedSince(query.year, query.rating, after, query.limit + 1);
    return this.pageOf(rows, query.limit, 'released', 'asc');
  }

  async list(query: MovieListQuery): Promise<MoviePage> {
    const filter: ListFilter = {
      releasedFrom: query.released_from,
      releasedTo: query.released_to,
      ratingMin: query.rating_min,
      titleContains: query.q === undefined ? undefined : escapeLike(query.q.trim()),
    };
    const after =
      query.cursor === undefined ? undefined : decodeCursor(query.cursor, query.sort, query.order);
    const [rows, counted] = await Promise.all([
      this.crud.page({
        ...filter,
        sort: query.sort,
        order: query.order,
        after,
        limit: query.limit + 1,
      }),
      after === undefined ? this.crud.countUpTo(filter, TOTAL_CAP + 1) : undefined,
    ]);
    const page = this.pageOf(rows, query.limit, query.sort, query.order);
    return counted !== undefined && counted <= TOTAL_CAP ? { ...page, total: counted } : page;
  }

  private pageOf(rows: Movie[], limit: number, sort: MovieSortKey, order: SortOrder): MoviePage {
    if (rows.length <= limit) return { items: rows };
    const items = rows.slice(0, limit);
    const last = items[items.length - 1] as Movie;
    return {
      items,
      next: encodeCursor({ sort, order, value: last[sort], movieId: last.movie_id }),
    };
  }

  async create(input: MovieCreate): Promise<TaggedMovie> {
    checkRating(input.rating);
    const created = await this.crud.insert({ ...input, title: input.title.trim() });
    if (created === undefined) throw new ConflictError(`Movie ${input.movie_id} already exists`);
    return created;
  }

  /** PUT: every field replaced; the movie must exist (POST creates). */
  replace(movieId: number, input: MovieReplace, ifMatch: string | undefined): Promise<TaggedMovie> {
    if (input.movie_id !== undefined && input.movie_id !== movieId) {
      throw new InvalidInputError('Invalid request: body.movie_id must be the id in the path', [
        { field: 'body.movie_id', message: `must be ${movieId}, the id in the path` },
      ]);
    }
    const { title, released, rating } = input;
    return this.update(movieId, { title, released, rating }, ifMatch);
  }

  /** PATCH: only the fields given change. */
  patch(movieId: number, input: MoviePatch, ifMatch: string | undefined): Promise<TaggedMovie> {
    return this.update(movieId, input, ifMatch);
  }

  private async update(
    movieId: number,
    changes: Partial<Omit<Movie, 'movie_id'>>,
    ifMatch: string | undefined,
  ): Promise<TaggedMovie> {
    const expected = parseIfMatch(ifMatch);
    checkRating(changes.rating);
    const values =
      changes.title === undefined ? changes : { ...changes, title: changes.title.trim() };
    const updated = await this.crud.updateIf(movieId, expected, values);
    return updated ?? this.whyNotWritten(movieId);
  }

  async remove(movieId: number, ifMatch: string | undefined): Promise<void> {
    const expected = parseIfMatch(ifMatch);
    if (!(await this.crud.deleteIf(movieId, expected))) await this.whyNotWritten(movieId);
  }

  /** A conditional write matched nothing: the movie is gone (404) or was changed (412). */
  private async whyNotWritten(movieId: number): Promise<never> {
    const current = await this.crud.getTagged(movieId);
    if (current === undefined) throw new NotFoundError(`Movie ${movieId} not found`);
    throw new PreconditionFailedError(
      `Movie ${movieId} was changed since it was read: read it again and retry with its new ETag`,
      current.etag,
    );
  }

  /**
   * Loads a CSV file (see movie_csv.ts) in one transaction: the first bad row, or a movie_id
   * that is taken (in the table or earlier in the file), aborts it with that row's line, and
   * the table is left as it was. Batches of `batchSize` rows go in as one statement each.
   */
  importCsv(
    chunks: AsyncIterable<string>,
    onBatch?: (imported: number) => void,
    batchSize = 5000,
  ): Promise<SeedReport> {
    return this.analyzedAfter(
      this.transaction(async (tx) => {
        const parser = new CsvParser();
        let header = true as boolean; // cleared inside take(), which flow analysis cannot see
        let imported = 0;
        let batch: { line: number; movie: Movie }[] = [];
        const flush = async () => {
          if (batch.length === 0) return;
          await this.insertChecked(batch, tx);
          imported += batch.length;
          batch = [];
          onBatch?.(imported);
        };
        const take = async (records: ReturnType<CsvParser['push']>) => {
          for (const record of records) {
            if (header) {
              checkHeader(record);
              header = false;
              continue;
            }
            batch.push({ line: record.line, movie: movieFromRecord(record) });
            if (batch.length >= batchSize) await flush();
          }
        };
        for await (const chunk of chunks) await take(parser.push(chunk));
        await take(parser.end());
        if (header) checkHeader(undefined);
        await flush();
        return { inserted: imported, total: await this.crud.count(tx) };
      }),
    );
  }

  /** A bulk load's report, once the table's statistics are fresh (MovieCRUD.analyze says why). */
  private async analyzedAfter(load: Promise<SeedReport>): Promise<SeedReport> {
    const report = await load;
    await this.crud.analyze();
    return report;
  }

  private async insertChecked(batch: { line: number; movie: Movie }[], tx: AppTx): Promise<void> {
    const inserted = await this.crud.insertBatch(
      batch.map((row) => row.movie),
      tx,
    );
    if (inserted.size === batch.length) return;
    // The first row whose id was not inserted by this row itself is the duplicate.
    for (const { line, movie } of batch) {
      if (!inserted.delete(movie.movie_id)) {
        throw new CsvError(line, `movie_id ${movie.movie_id} already exists`);
      }
    }
  }

  /**
   * Writes every movie as CSV, by movie_id, in pages of `pageSize`, from one read-only snapshot
   * (repeatable read): a write during a long export cannot make it skip or repeat a movie.
   */
  exportCsv(write: (text: string) => Promise<void>, pageSize = 10_000): Promise<number> {
    return this.db.transaction(
      async (tx) => {
        await write(`${CSV_HEADER}\n`);
        let written = 0;
        let after: Position | undefined;
        for (;;) {
          const rows = await this.crud.page(
            { sort: 'movie_id', order: 'asc', after, limit: pageSize },
            tx,
          );
          if (rows.length === 0) return written;
          await write(rows.map(csvLine).join(''));
          written += rows.length;
          const last = rows[rows.length - 1] as Movie;
          after = { sort: 'movie_id', order: 'asc', value: last.movie_id, movieId: last.movie_id };
        }
      },
      { isolationLevel: 'repeatable read', accessMode: 'read only' },
    );
  }

  isEmpty(): Promise<boolean> {
    return this.crud.count().then((n) => n === 0);
  }

  /** Loads the demo catalogue; movies already there (by id) are left as they are. */
  seedDemo(): Promise<SeedReport> {
    return this.transaction(async (tx) => ({
      inserted: await this.crud.addMissing(DEMO_MOVIES, tx),
      total: await this.crud.count(tx),
    }));
  }

  /** Adds `howMany` generated movies after the highest id, in one transaction, in batches. */
  seedSynthetic(
    howMany: number,
    onProgress?: (done: number, total: number) => void,
    batchSize = 50_000,
  ): Promise<SeedReport> {
    return this.analyzedAfter(
      this.transaction(async (tx) => {
        const start = (await this.crud.maxId(tx)) + 1;
        for (let done = 0; done < howMany;) {
          const size = Math.min(batchSize, howMany - done);
          await this.crud.addSynthetic(start + done, start + done + size - 1, tx);
          done += size;
          onProgress?.(done, howMany);
        }
        return { inserted: howMany, total: await this.crud.count(tx) };
      }),
    );
  }
}
