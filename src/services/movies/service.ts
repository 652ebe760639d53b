/** MovieService: the rules of the movie catalogue (reads, conditional writes, bulk loads). */
import { ReadRouter, type AppTx, type ReaderKey } from '../../backend/database.js';
import { DEMO_MOVIES } from '../../data/demo_movies.js';
import {
  ConflictError,
  InvalidInputError,
  NotFoundError,
  PreconditionFailedError,
} from '../../exc.js';
import { movies } from '../../models/movies.js';
import type {
  Movie,
  MovieCreate,
  MovieListQuery,
  MoviePatch,
  MovieReplace,
  MovieSortKey,
  NewMoviesQuery,
  SortOrder,
} from '../../schemas/movies.js';
import { AppService, type ServiceContext } from '../base.js';
import { escapeLike, MovieCRUD } from './crud.js';
import { CSV_HEADER, CsvError, csvLines, movieRows } from './csv.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import {
  TOTAL_CAP,
  type ListFilter,
  type MoviePage,
  type Position,
  type Precondition,
  type SeedReport,
  type TaggedMovie,
} from './types.js';

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
  /**
   * The catalogue reads, on a replica where one may serve them (MYAPI_DATABASE__REPLICAS). A
   * `reader` (the client's user id) that just wrote reads its own write: backend's ReplicaSet.
   */
  private readonly reads: ReadRouter<MovieCRUD>;

  constructor(context: ServiceContext) {
    super(context);
    this.crud = new MovieCRUD(context, movies);
    this.reads = new ReadRouter(
      this.crud,
      context.replicas,
      (target) => new MovieCRUD(target, movies),
    );
  }

  /** A movie with the ETag that a later write must send back in If-Match. */
  async getTagged(movieId: number, reader?: ReaderKey): Promise<TaggedMovie> {
    const found = await this.reads.read(reader, (crud) => crud.getTagged(movieId));
    if (found === undefined) throw new NotFoundError(`Movie ${movieId} not found`);
    return found;
  }

  /**
   * One page of /movies/new, in (released, movie_id) order. Asks for one row more than the page,
   * so the next page is offered only when it exists. Its cursor is a position in that order, the
   * same as GET /movies?sort=released gives. A cursor before the year (the client changed the
   * year) means the range's start, so no page ever holds a movie released before the year.
   */
  async releasedSince(query: NewMoviesQuery, reader?: ReaderKey): Promise<MoviePage> {
    const position =
      query.cursor === undefined ? undefined : decodeCursor(query.cursor, 'released', 'asc');
    const after =
      position === undefined || (position.value as number) < query.year
        ? undefined
        : { released: position.value as number, movieId: position.movieId };
    const rows = await this.reads.read(reader, (crud) =>
      crud.releasedSince(query.year, query.rating, after, query.limit + 1),
    );
    return this.pageOf(rows, query.limit, 'released', 'asc');
  }

  async list(query: MovieListQuery, reader?: ReaderKey): Promise<MoviePage> {
    const filter: ListFilter = {
      releasedFrom: query.released_from,
      releasedTo: query.released_to,
      ratingMin: query.rating_min,
      titleContains: query.q === undefined ? undefined : escapeLike(query.q.trim()),
    };
    const after =
      query.cursor === undefined ? undefined : decodeCursor(query.cursor, query.sort, query.order);
    const [rows, counted] = await this.reads.read(reader, (crud) =>
      Promise.all([
        crud.page({
          ...filter,
          sort: query.sort,
          order: query.order,
          after,
          limit: query.limit + 1,
        }),
        after === undefined ? crud.countUpTo(filter, TOTAL_CAP + 1) : undefined,
      ]),
    );
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

  async create(input: MovieCreate, writer?: ReaderKey): Promise<TaggedMovie> {
    checkRating(input.rating);
    const created = await this.crud.insert({ ...input, title: input.title.trim() });
    if (created === undefined) throw new ConflictError(`Movie ${input.movie_id} already exists`);
    await this.reads.wrote(writer);
    return created;
  }

  /**
   * The writes below change the movie only if its stored version is one `expected` allows (the
   * router reads it from If-Match), checked in the statement itself: no update is lost.
   */

  /** PUT: every field replaced; the movie must exist (POST creates). */
  replace(
    movieId: number,
    input: MovieReplace,
    expected: Precondition,
    writer?: ReaderKey,
  ): Promise<TaggedMovie> {
    if (input.movie_id !== undefined && input.movie_id !== movieId) {
      throw new InvalidInputError('Invalid request: body.movie_id must be the id in the path', [
        { field: 'body.movie_id', message: `must be ${movieId}, the id in the path` },
      ]);
    }
    const { title, released, rating } = input;
    return this.update(movieId, { title, released, rating }, expected, writer);
  }

  /** PATCH: only the fields given change. */
  patch(
    movieId: number,
    input: MoviePatch,
    expected: Precondition,
    writer?: ReaderKey,
  ): Promise<TaggedMovie> {
    return this.update(movieId, input, expected, writer);
  }

  private async update(
    movieId: number,
    changes: Partial<Omit<Movie, 'movie_id'>>,
    expected: Precondition,
    writer: ReaderKey | undefined,
  ): Promise<TaggedMovie> {
    checkRating(changes.rating);
    const values =
      changes.title === undefined ? changes : { ...changes, title: changes.title.trim() };
    const updated = await this.crud.updateIf(movieId, expected, values);
    if (updated === undefined) return this.whyNotWritten(movieId);
    await this.reads.wrote(writer);
    return updated;
  }

  /** Deletes the movie if its version is one `expected` allows. */
  async remove(movieId: number, expected: Precondition, writer?: ReaderKey): Promise<void> {
    if (!(await this.crud.deleteIf(movieId, expected))) await this.whyNotWritten(movieId);
    await this.reads.wrote(writer);
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
   * Loads a CSV file (see csv.ts) in one transaction: the first bad row, or a movie_id
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
        let imported = 0;
        let batch: { line: number; movie: Movie }[] = [];
        const flush = async () => {
          if (batch.length === 0) return;
          await this.insertChecked(batch, tx);
          imported += batch.length;
          batch = [];
          onBatch?.(imported);
        };
        for await (const row of movieRows(chunks)) {
          batch.push(row);
          if (batch.length >= batchSize) await flush();
        }
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
          await write(csvLines(rows));
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
