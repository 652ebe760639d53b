import { and, asc, count, eq, gte, max, sql, type Placeholder } from 'drizzle-orm';
import type { Executor } from '../backend/database.js';
import { DEMO_MOVIES } from '../data/demo_movies.js';
import { NotFoundError } from '../exc.js';
import { movies } from '../models/movies.js';
import type { Movie, NewMoviesQuery } from '../schemas/movies.js';
import { AppCRUD, AppService, type ServiceContext } from './base.js';

type Value = number | Placeholder;

/** The filters, for a value now or a placeholder of a prepared statement. */
const idIs = (id: Value) => eq(movies.movie_id, id);
const releasedSince = (year: Value, rating: Value) =>
  and(gte(movies.released, year), gte(movies.rating, rating));

export class MovieCRUD extends AppCRUD<typeof movies> {
  /**
   * The read paths every client hits, as named prepared statements: Drizzle builds the SQL once,
   * and PostgreSQL parses and plans it once per connection instead of per request.
   */
  private readonly prepared = {
    byId: this.preparedRows(
      'movies_by_id',
      this.db
        .select()
        .from(movies)
        .where(idIs(sql.placeholder('id')))
        .limit(1),
    ),
    releasedSince: this.preparedRows(
      'movies_released_since',
      this.db
        .select()
        .from(movies)
        .where(releasedSince(sql.placeholder('year'), sql.placeholder('rating')))
        .orderBy(asc(movies.movie_id)),
    ),
  };

  async getById(movieId: number, tx?: Executor): Promise<Movie | undefined> {
    if (tx !== undefined) return this.getOne(idIs(movieId), tx);
    const [movie] = await this.prepared.byId({ id: movieId });
    return movie;
  }

  releasedSince(year: number, minRating: number, tx?: Executor): Promise<Movie[]> {
    if (tx !== undefined) {
      return this.getAll(releasedSince(year, minRating), [asc(movies.movie_id)], tx);
    }
    return this.prepared.releasedSince({ year, rating: minRating });
  }

  async count(tx?: Executor): Promise<number> {
    const [row] = await this.on(tx).select({ n: count() }).from(movies);
    return row?.n ?? 0;
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

export class MovieService extends AppService {
  private readonly crud: MovieCRUD;

  constructor(context: ServiceContext) {
    super(context);
    this.crud = new MovieCRUD(this.db, movies, context.queryArrays);
  }

  async getMovie(movieId: number): Promise<Movie> {
    const movie = await this.crud.getById(movieId);
    if (movie === undefined) throw new NotFoundError(`Movie ${movieId} not found`);
    return movie;
  }

  releasedSince(query: NewMoviesQuery): Promise<Movie[]> {
    return this.crud.releasedSince(query.year, query.rating);
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
    return this.transaction(async (tx) => {
      const start = (await this.crud.maxId(tx)) + 1;
      for (let done = 0; done < howMany;) {
        const size = Math.min(batchSize, howMany - done);
        await this.crud.addSynthetic(start + done, start + done + size - 1, tx);
        done += size;
        onProgress?.(done, howMany);
      }
      return { inserted: howMany, total: await this.crud.count(tx) };
    });
  }
}
