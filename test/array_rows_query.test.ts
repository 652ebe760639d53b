import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ArrayRowsQuery, queryArrayRows } from '../src/backend/array_rows_query.js';
import { openDatabase, type ArrayQuery } from '../src/backend/database.js';
import {
  createServerDatabase,
  createTestDatabase,
  databaseKinds,
  temporaryEmbedded,
} from './support/databases.js';

/** One row of many types, or none when $1 is not positive. */
const TYPES = {
  name: 'test_types',
  rowMode: 'array' as const,
  text: `select 1::int4 as i4, 9007199254740993::int8 as i8, 'tëxt'::text as t, 7.5::numeric(2,1) as n,
    true as b, null::int as nothing, '2026-11-29T10:00:00Z'::timestamptz as ts,
    array[1, 2]::int[] as ints, '{"a": [1]}'::jsonb as doc
    where $1::int > 0`,
};
/** That row, as pg parses it. */
const TYPES_ROW = [
  1,
  '9007199254740993',
  'tëxt',
  '7.5',
  true,
  null,
  new Date('2026-11-29T10:00:00Z'),
  [1, 2],
  { a: [1] },
];

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

/** The hot reads' entry point on a database of each kind that runs them through pg. */
interface Target {
  queryArrays: ArrayQuery;
  close(): Promise<void>;
}

const targets: Record<string, () => Promise<Target>> = {
  // The embedded database as `myapi serve` opens it: pg connections through its socket.
  'embedded database': async () => {
    const embedded = temporaryEmbedded('myapi-array-rows-');
    const database = await openDatabase(embedded.settings, {
      role: 'server',
      command: 'test server',
    });
    return {
      queryArrays: database.queryArrays,
      async close() {
        await database.close();
        embedded.remove();
      },
    };
  },
  ...(databaseKinds().includes('postgres') && {
    'PostgreSQL server': async () => {
      const t = await createTestDatabase('postgres', { migrated: false });
      return { queryArrays: t.database.queryArrays, close: () => t.close() };
    },
  }),
};

for (const [kind, open] of Object.entries(targets)) {
  describe(`hot reads through pg on the ${kind}`, () => {
    let target: Target;
    before(async () => {
      target = await open();
    });
    after(async () => {
      await target.close();
    });

    it('return the rows as pg parses them, again and again', async () => {
      for (const positive of [1, 0, 2, 3, 4, 5, 6, 7]) {
        assert.deepEqual(
          await target.queryArrays(TYPES.name, TYPES.text, [positive]),
          positive > 0 ? [TYPES_ROW] : [],
        );
      }
    });

    it('fail with the database error, and the same statement answers the next query', async () => {
      // pg-pool replaces the connection after a failed query. The embedded database's one session
      // outlives it, and the new connection used to fail on "prepared statement already exists".
      const divide = 'select 6 / $1::int';
      await assert.rejects(
        target.queryArrays('test_divide', divide, [0]),
        (error: unknown) => error instanceof pg.DatabaseError && error.code === '22012',
      );
      assert.deepEqual(await target.queryArrays('test_divide', divide, [3]), [[2]]);
      await assert.rejects(
        target.queryArrays('test_divide', divide, ['three']),
        (error: unknown) => error instanceof pg.DatabaseError && error.code === '22P02',
      );
      assert.deepEqual(await target.queryArrays(TYPES.name, TYPES.text, [1]), [TYPES_ROW]);
    });
  });
}

describe(
  'ArrayRowsQuery on one connection of the PostgreSQL server',
  {
    skip: !databaseKinds().includes('postgres') && 'TEST_PG=off',
  },
  () => {
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

    it('returns what pg returns, and prepares its statement once per connection', async () => {
      const { text, rowMode } = TYPES;
      assert.deepEqual((await pool.query({ text, rowMode, values: [1] })).rows, [TYPES_ROW]);
      assert.deepEqual(await queryArrayRows(pool, TYPES, [1]), [TYPES_ROW]);
      assert.deepEqual(await queryArrayRows(pool, TYPES, [0]), []);
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
  },
);
