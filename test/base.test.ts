import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, it } from 'node:test';
import { asc, eq, gte, sql, type SQL } from 'drizzle-orm';
import { movieColumns, movies } from '../src/models/movies.js';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { AppCRUD, AppService, type RowOf } from '../src/services/base.js';
import {
  createTestDatabase,
  describeEachDatabase,
  QueryWatch,
  type TestDatabase,
} from './support/databases.js';

/** A service composing two writes, to check that a failure in the unit leaves nothing behind. */
class TwoStepService extends AppService {
  readonly crud = new AppCRUD(this.context, movies);

  addBothOrNone(first: number, second: number): Promise<void> {
    return this.transaction(async (tx) => {
      await this.crud.addOne({ movie_id: first, title: 'first', released: 2000, rating: 5 }, tx);
      await this.crud.addOne({ movie_id: second, title: 'second', released: 2000, rating: 5 }, tx);
    });
  }
}

/** Exposes the hot-read helper: `fields` of the movies released since a year, by movie_id. */
class MoviesSince<Fields extends Record<string, PgColumn | SQL>> extends AppCRUD<typeof movies> {
  readonly since: (values: { year: number }) => Promise<RowOf<Fields>[]>;

  constructor(context: ConstructorParameters<typeof AppCRUD>[0], name: string, fields: Fields) {
    super(context, movies);
    this.since = this.preparedRows(name, fields, (selected: Record<string, PgColumn | SQL>) =>
      this.db
        .select(selected)
        .from(movies)
        .where(gte(movies.released, sql.placeholder('year')))
        .orderBy(asc(movies.movie_id)),
    );
  }
}

/** A lookup by id, at most two keys per query so that a few lookups already need two. */
class MovieLookup extends AppCRUD<typeof movies> {
  readonly byId = this.preparedLookup('test_movie_by_id', movieColumns, 'movie_id', 2);
}

/** A whole row of the table: the movie and the version PostgreSQL keeps with it. */
function row(movie: { movie_id: number; title: string; released: number; rating: number }) {
  const content = `${movie.movie_id}/${movie.released}/${movie.rating.toFixed(1)}/${movie.title}`;
  return { ...movie, version: createHash('md5').update(content).digest('hex') };
}

// A set-returning function, columns deliberately in another order than the table's.
const FIXTURE_FUNCTION = `
  create function myapi.movies_released_between(lo integer, hi integer)
  returns table (rating numeric(2,1), version text, movie_id integer, released integer, title text)
  language sql stable as $$
    select rating, version, movie_id, released, title from myapi.movies
    where released between lo and hi order by movie_id
  $$`;

describeEachDatabase('AppCRUD and AppService', (kind) => {
  let t: TestDatabase;
  let crud: AppCRUD<typeof movies>;
  before(async () => {
    t = await createTestDatabase(kind);
    await t.database.db.execute(sql.raw(FIXTURE_FUNCTION));
    crud = new AppCRUD(t.database, movies);
  });
  after(async () => {
    await t.close();
  });

  it('adds one and many rows and returns them in the model shape', async () => {
    const one = await crud.addOne({ movie_id: 10, title: 'Ten', released: 1990, rating: 7.5 });
    assert.deepEqual(one, row({ movie_id: 10, title: 'Ten', released: 1990, rating: 7.5 }));
    const many = await crud.addAll([
      { movie_id: 11, title: 'Eleven', released: 1995, rating: 8.1 },
      { movie_id: 12, title: 'Twelve', released: 2005, rating: 6 },
    ]);
    assert.deepEqual(
      many.map((m) => m.movie_id),
      [11, 12],
    );
    assert.deepEqual(await crud.addAll([]), []);
  });

  it('gets one row or undefined, and all rows matching a filter in order', async () => {
    assert.equal((await crud.getOne(eq(movies.movie_id, 11)))?.title, 'Eleven');
    assert.equal(await crud.getOne(eq(movies.movie_id, 404)), undefined);
    const recent = await crud.getAll(gte(movies.released, 1995), [asc(movies.movie_id)]);
    assert.deepEqual(
      recent.map((m) => m.movie_id),
      [11, 12],
    );
  });

  it('selects from a set-returning SQL function into the model shape, numbers as numbers', async () => {
    const rows = await crud.selectFromFunction('movies_released_between', [1990, 1999]);
    assert.deepEqual(rows, [
      row({ movie_id: 10, title: 'Ten', released: 1990, rating: 7.5 }),
      row({ movie_id: 11, title: 'Eleven', released: 1995, rating: 8.1 }),
    ]);
    assert.equal(typeof rows[0]?.rating, 'number');
    assert.deepEqual(await crud.selectFromFunction('movies_released_between', [1800, 1801]), []);
  });

  it('runs a hot read in array mode as a named statement, to the same rows on any plan', async () => {
    const watch = new QueryWatch();
    const recent = new MoviesSince(
      { db: t.database.db, queryArrays: watch.wrap(t.database.queryArrays) },
      'test_recent_movies',
      movieColumns,
    );
    const expected = [
      { movie_id: 11, title: 'Eleven', released: 1995, rating: 8.1 },
      { movie_id: 12, title: 'Twelve', released: 2005, rating: 6 },
    ];
    // Seven times: a named statement is prepared on the first call and may switch to its
    // generic plan after the fifth.
    for (let i = 0; i < 7; i++) {
      assert.deepEqual(await recent.since({ year: 1995 }), expected);
    }
    assert.deepEqual(await recent.since({ year: 2100 }), []);
    assert.deepEqual(new Set(watch.runs.map((run) => run.name)), new Set(['test_recent_movies']));
  });

  it('returns the columns a hot read computes after the row, and keeps one query per name', async () => {
    const titled = new MoviesSince(t.database, 'test_titled_movies', {
      ...movieColumns,
      label: sql<string>`${movies.movie_id}::text || ': ' || ${movies.title}`,
    });
    assert.deepEqual(await titled.since({ year: 2005 }), [
      { movie_id: 12, title: 'Twelve', released: 2005, rating: 6, label: '12: Twelve' },
    ]);
    await assert.rejects(
      t.database.queryArrays('test_titled_movies', 'select 1', []),
      /prepared statement test_titled_movies was given another query/,
    );
    assert.equal((await titled.since({ year: 2005 })).length, 1);
  });

  it('looks keys up together when asked in the same turn, a few keys per query', async () => {
    const watch = new QueryWatch();
    const lookup = new MovieLookup(
      { db: t.database.db, queryArrays: watch.wrap(t.database.queryArrays) },
      movies,
    );
    /** The statements run since the last call, with their parameters. */
    const names = () =>
      watch.runs.splice(0).map((run) => `${run.name} ${JSON.stringify(run.params)}`);
    const ten = { movie_id: 10, title: 'Ten', released: 1990, rating: 7.5 };
    const eleven = { movie_id: 11, title: 'Eleven', released: 1995, rating: 8.1 };
    const twelve = { movie_id: 12, title: 'Twelve', released: 2005, rating: 6 };
    // Seven rounds: both statements switch to their generic plan after the fifth.
    for (let i = 0; i < 7; i++) {
      assert.deepEqual(await lookup.byId(11), eleven);
      assert.deepEqual(await lookup.byId(404), undefined);
      assert.deepEqual(names(), ['test_movie_by_id [11]', 'test_movie_by_id [404]']);

      const together = await Promise.all([10, 11, 404, 11, 12].map((id) => lookup.byId(id)));
      assert.deepEqual(together, [ten, eleven, undefined, eleven, twelve]);
      // Four distinct keys, two per query; of three, the last goes alone, by the single-key one.
      assert.deepEqual(names(), [
        'test_movie_by_id_any [[10,11]]',
        'test_movie_by_id_any [[404,12]]',
      ]);
      assert.deepEqual(await Promise.all([10, 11, 12].map((id) => lookup.byId(id))), [
        ten,
        eleven,
        twelve,
      ]);
      assert.deepEqual(names(), ['test_movie_by_id_any [[10,11]]', 'test_movie_by_id [12]']);
    }

    // A lost database fails the lookups its query answered, and only those.
    watch.failNext(Object.assign(new Error('lost'), { code: '08006' }));
    const settled = await Promise.allSettled([10, 11, 12].map((id) => lookup.byId(id)));
    assert.deepEqual(
      settled.map((result) => (result.status === 'rejected' ? String(result.reason) : 'ok')),
      ['Error: lost', 'Error: lost', 'ok'],
    );
    assert.deepEqual(await lookup.byId(10), ten);

    // A key the statement refuses (out of integer range) fails its own caller only, not the
    // lookups that shared its query.
    names();
    const mixed = await Promise.allSettled([10, 2 ** 40, 11].map((id) => lookup.byId(id)));
    assert.deepEqual(
      mixed.map((result) => result.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(
      mixed.map((result) => (result.status === 'fulfilled' ? result.value : undefined)),
      [ten, undefined, eleven],
    );
    assert.deepEqual(names().slice(0, 1), [`test_movie_by_id_any [[10,${2 ** 40}]]`]);
  });

  it('refuses a lookup whose key is not a column', () => {
    class ByLabel extends AppCRUD<typeof movies> {
      readonly byLabel = this.preparedLookup(
        'test_by_label',
        { ...movieColumns, label: movies.title },
        'label',
      );
    }
    assert.doesNotThrow(() => new ByLabel(t.database, movies));
    class ByComputed extends AppCRUD<typeof movies> {
      readonly byComputed = this.preparedLookup(
        'test_by_computed',
        { ...movieColumns, computed: sql<string>`'x'` },
        // @ts-expect-error computed SQL is no key
        'computed',
      );
    }
    assert.throws(() => new ByComputed(t.database, movies), /the key computed is not a column/);
  });

  it('runs CRUD calls inside a service transaction: all of it lands, or none', async () => {
    const service = new TwoStepService(t.database);
    await service.addBothOrNone(20, 21);
    assert.equal((await crud.getAll(gte(movies.movie_id, 20))).length, 2);
    // 22 is new, 10 already exists: the unique violation must take 22 with it.
    await assert.rejects(service.addBothOrNone(22, 10));
    assert.equal(await crud.getOne(eq(movies.movie_id, 22)), undefined);
  });
});
