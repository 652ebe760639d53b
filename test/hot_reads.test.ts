import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openDatabase, type ArrayQuery } from '../src/backend/database.js';
import { createTestDatabase, databaseKinds, temporaryEmbedded } from './support/databases.js';

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
