import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ArrayRowsQuery, queryArrayRows } from '../src/backend/array_rows_query.js';
import { createServerDatabase } from './support/databases.js';

/** One row of many types, or none when $1 is not positive. */
const TYPES = {
  name: 'test_types',
  rowMode: 'array' as const,
  text: `select 1::int4 as i4, 9007199254740993::int8 as i8, 'tëxt'::text as t, 7.5::numeric(2,1) as n,
    true as b, null::int as nothing, '2026-11-29T10:00:00Z'::timestamptz as ts,
    array[1, 2]::int[] as ints, '{"a": [1]}'::jsonb as doc
    where $1::int > 0`,
};

/** Runs a query object on the pool and returns it, so that its result can be looked at. */
async function run<Query extends pg.Query>(pool: pg.Pool, query: Query): Promise<Query> {
  await (pool.query(query) as unknown as Promise<unknown>);
  return query;
}

/** The row template pg's Result builds for object-mode rows (null until a row description). */
function rowTemplate(query: pg.Query): unknown {
  return (query as unknown as { _result: { _prebuiltEmptyResultObject: unknown } })._result
    ._prebuiltEmptyResultObject;
}

describe('ArrayRowsQuery (the hot reads on a PostgreSQL server or the embedded socket)', () => {
  let server: Awaited<ReturnType<typeof createServerDatabase>>;
  let pool: pg.Pool;
  before(async () => {
    server = await createServerDatabase();
    // One connection, so that the statement's preparation can be seen on it.
    pool = new pg.Pool({ connectionString: server.dsn, max: 1 });
  });
  after(async () => {
    await pool.end();
    await server.drop();
  });

  it('returns the rows as pg parses them, and prepares its statement once per connection', async () => {
    const { text, rowMode } = TYPES;
    const expected = (await pool.query({ text, rowMode, values: [1] })).rows;
    assert.deepEqual(expected, [
      [
        1,
        '9007199254740993',
        'tëxt',
        '7.5',
        true,
        null,
        new Date('2026-11-29T10:00:00Z'),
        [1, 2],
        { a: [1] },
      ],
    ]);
    assert.deepEqual(await queryArrayRows(pool, TYPES, [1]), expected);
    assert.deepEqual(await queryArrayRows(pool, TYPES, [0]), []);
    assert.deepEqual(await queryArrayRows(pool, TYPES, [2]), expected);
    const prepared = await pool.query<{ name: string }>(
      'select name from pg_prepared_statements order by name',
    );
    assert.deepEqual(
      prepared.rows.map((row) => row.name),
      ['test_types'],
    );
  });

  it('builds none of the row template that pg builds for every query', async () => {
    // What the class is for: pg's own query builds one (so this check can see it)...
    assert.notEqual(
      rowTemplate(await run(pool, new pg.Query({ ...TYPES, name: 'plain' }, [1]))),
      null,
    );
    // ...and an ArrayRowsQuery, whose rows are arrays, none. Fails if pg stops using `_result`.
    assert.equal(rowTemplate(await run(pool, new ArrayRowsQuery(TYPES, [1]))), null);
  });

  it('fails with the database error, and the next query is answered', async () => {
    const divide = { name: 'test_divide', rowMode: 'array' as const, text: 'select 6 / $1::int' };
    await assert.rejects(
      queryArrayRows(pool, divide, [0]),
      (error: unknown) => error instanceof pg.DatabaseError && error.code === '22012',
    );
    assert.deepEqual(await queryArrayRows(pool, divide, [3]), [[2]]);
    await assert.rejects(
      queryArrayRows(pool, divide, ['three']),
      (error: unknown) => error instanceof pg.DatabaseError && error.code === '22P02',
    );
    assert.deepEqual(await queryArrayRows(pool, TYPES, [1]).then((rows) => rows.length), 1);
  });
});
