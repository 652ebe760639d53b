import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import bcrypt from 'bcrypt';
import { sql } from 'drizzle-orm';
import { buildApp } from '../src/app.js';
import { migrate, pendingMigrations, queryRows } from '../src/backend/database.js';
import { createLogger } from '../src/backend/logging.js';
import {
  createTestDatabase,
  describeEachDatabase,
  LogCapture,
  TOKEN_KEY,
  type TestDatabase,
} from './support/databases.js';
import { form } from './support/http.js';

/** The FastAPI tutorial's own DDL, as its users ran it. */
const TUTORIAL_SQL = [
  'CREATE SCHEMA myapi',
  `CREATE TABLE myapi.movies (
     movie_id INTEGER PRIMARY KEY, title TEXT NOT NULL, released INTEGER NOT NULL,
     rating NUMERIC(2,1) NOT NULL)`,
  `CREATE TABLE myapi.users (
     user_id SERIAL PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
     hashed_password TEXT NOT NULL, UNIQUE(email))`,
];

const TUTORIAL_MOVIES = [
  { movie_id: 1, title: 'The Shawshank Redemption', released: 1994, rating: 9.2 },
  { movie_id: 2, title: 'The Godfather', released: 1972, rating: 9.2 },
  { movie_id: 3, title: 'The Dark Knight', released: 2008, rating: 9 },
];

/** Every migration in the repository, in order: what a new database gets. */
const ALL_MIGRATIONS = (
  JSON.parse(readFileSync(new URL('../drizzle/meta/_journal.json', import.meta.url), 'utf8')) as {
    entries: { tag: string }[];
  }
).entries.map((entry) => entry.tag);

async function run(t: TestDatabase, statement: string) {
  await t.database.db.execute(sql.raw(statement));
}

describeEachDatabase('migrations', (kind) => {
  const opened: TestDatabase[] = [];
  after(async () => {
    for (const t of opened) await t.close();
  });
  const fresh = async () => {
    const t = await createTestDatabase(kind, { migrated: false });
    opened.push(t);
    return t;
  };

  it('creates the schema on an empty database, then has nothing left to do', async () => {
    const t = await fresh();
    assert.deepEqual(await pendingMigrations(t.database.db), ALL_MIGRATIONS);
    assert.deepEqual(await migrate(t.database.db), {
      applied: ALL_MIGRATIONS,
      alreadyApplied: [],
    });
    assert.deepEqual(await pendingMigrations(t.database.db), []);
    assert.deepEqual(await migrate(t.database.db), {
      applied: [],
      alreadyApplied: ALL_MIGRATIONS,
    });
    const columns = await queryRows<{
      table_name: string;
      column_name: string;
      data_type: string;
    }>(
      t.database.db,
      sql`select table_name, column_name, data_type from information_schema.columns
          where table_schema = 'myapi' and table_name in ('movies', 'users')
          order by table_name, ordinal_position`,
    );
    assert.deepEqual(
      columns.map((c) => `${c.table_name}.${c.column_name}:${c.data_type}`),
      [
        'movies.movie_id:integer',
        'movies.title:text',
        'movies.released:integer',
        'movies.rating:numeric',
        'movies.version:text',
        'users.user_id:integer',
        'users.name:text',
        'users.email:text',
        'users.hashed_password:text',
        'users.is_active:boolean',
        'users.is_superuser:boolean',
        'users.email_verified_at:timestamp with time zone',
      ],
    );
  });

  it("adopts a database made by the tutorial's SQL, losing nothing, and its users still log in", async () => {
    const t = await fresh();
    for (const statement of TUTORIAL_SQL) await run(t, statement);
    for (const m of TUTORIAL_MOVIES) {
      await run(
        t,
        `INSERT INTO myapi.movies VALUES (${m.movie_id}, '${m.title}', ${m.released}, ${m.rating})`,
      );
    }
    // passlib's bcrypt hash, as the FastAPI app stored it; the email in mixed case.
    const legacy = await bcrypt.hash('qwerty123', 4);
    await run(
      t,
      `INSERT INTO myapi.users (name, email, hashed_password) VALUES ('test user', 'Test_User@myapi.com', '${legacy}')`,
    );

    assert.deepEqual((await migrate(t.database.db)).applied, ALL_MIGRATIONS);
    const movies = await queryRows<{ movie_id: number; title: string; rating: string }>(
      t.database.db,
      sql`select movie_id, title, rating::text as rating from myapi.movies order by movie_id`,
    );
    assert.deepEqual(
      movies.map((m) => [m.movie_id, m.title, m.rating]),
      [
        [1, 'The Shawshank Redemption', '9.2'],
        [2, 'The Godfather', '9.2'],
        [3, 'The Dark Knight', '9.0'],
      ],
    );

    // A row written the tutorial's way after adoption is still a complete user, and a movie
    // written or changed by the tutorial's app has the version its ETag names.
    const later = await bcrypt.hash('second-password', 4);
    await run(
      t,
      `INSERT INTO myapi.users (name, email, hashed_password) VALUES ('second', 'second@myapi.com', '${later}')`,
    );
    await run(t, `INSERT INTO myapi.movies VALUES (4, 'Amélie', 2001, 8.3)`);
    await run(t, `UPDATE myapi.movies SET rating = 9.3 WHERE movie_id = 1`);

    // Rows from before sign-up existed count as verified: they log in even when it is required.
    const app = await buildApp({
      settings: {
        ...t.settings,
        log_level: 'warn',
        accounts: { ...t.settings.accounts, require_verified_email: true },
      },
      database: t.database,
      tokenKey: TOKEN_KEY,
      logger: createLogger('warn', new LogCapture()),
    });
    try {
      for (const [username, password] of [
        ['test_user@myapi.com', 'qwerty123'],
        ['second@myapi.com', 'second-password'],
      ] as const) {
        const token = await app.inject({
          method: 'POST',
          url: '/token',
          ...form({ username, password }),
        });
        assert.equal(token.statusCode, 200, `${username}: ${token.body}`);
        const { access_token } = token.json<{ access_token: string }>();
        const response = await app.inject({
          method: 'GET',
          url: '/movies/new?year=1990&rating=9',
          headers: { authorization: `Bearer ${access_token}` },
        });
        assert.deepEqual(response.json(), [
          { ...TUTORIAL_MOVIES[0], rating: 9.3 },
          TUTORIAL_MOVIES[2],
        ]);
        for (const [id, content] of [
          [1, '1/1994/9.3/The Shawshank Redemption'],
          [4, '4/2001/8.3/Amélie'],
        ] as const) {
          const movie = await app.inject({
            method: 'GET',
            url: `/movies/${id}`,
            headers: { authorization: `Bearer ${access_token}` },
          });
          const digest = createHash('md5').update(content).digest('hex');
          assert.equal(movie.headers.etag, `"${digest}"`, content);
        }
        // The columns the accounts migration added default to an active regular user.
        const me = await app.inject({
          method: 'GET',
          url: '/users/me',
          headers: { authorization: `Bearer ${access_token}` },
        });
        assert.deepEqual([me.statusCode, me.json<{ is_active: boolean }>().is_active], [200, true]);
        assert.equal(me.json<{ is_superuser: boolean }>().is_superuser, false);
      }
    } finally {
      await app.close();
    }
    assert.deepEqual(await migrate(t.database.db), {
      applied: [],
      alreadyApplied: ALL_MIGRATIONS,
    });
  });

  it('lets concurrent migrate runs serialise instead of failing', async () => {
    const t = await fresh();
    const reports = await Promise.all([migrate(t.database.db), migrate(t.database.db)]);
    assert.deepEqual(reports.map((r) => r.applied).flat(), ALL_MIGRATIONS);
  });
});

describe('drizzle/ and the models', () => {
  it('agree: drizzle-kit generate, as a new service starts, has nothing to add', async () => {
    // On a copy of drizzle/, so a model ahead of its migrations fails here without writing one.
    // drizzle-kit takes `out` relative to its working directory only, and exits 0 on errors.
    const root = fileURLToPath(new URL('..', import.meta.url));
    const work = mkdtempSync(join(tmpdir(), 'myapi-drizzle-'));
    try {
      cpSync(join(root, 'drizzle'), join(work, 'drizzle'), { recursive: true });
      const config = {
        dialect: 'postgresql',
        schema: join(root, 'src/models/*.ts'),
        out: 'drizzle',
        schemaFilter: ['myapi'],
      };
      writeFileSync(join(work, 'drizzle.config.json'), JSON.stringify(config));
      const kit = join(root, 'node_modules/drizzle-kit/bin.cjs');
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [kit, 'generate', '--config', 'drizzle.config.json'],
        { cwd: work },
      );
      assert.match(stdout, /No schema changes/);
      assert.deepEqual(readdirSync(join(work, 'drizzle')), readdirSync(join(root, 'drizzle')));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
