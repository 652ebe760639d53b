import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import {
  MigrationChangedError,
  migrate,
  openDatabase,
  pendingMigrations,
} from '../src/backend/database.js';
import {
  createServerDatabase,
  createTestDatabase,
  describeEachDatabase,
  temporaryEmbedded,
  TOKEN_KEY,
  type DatabaseKind,
} from './support/databases.js';

/** An applied migration whose file changed stops the start, on both databases. */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIRST = (
  JSON.parse(readFileSync(join(ROOT, 'drizzle/meta/_journal.json'), 'utf8')) as {
    entries: { tag: string }[];
  }
).entries[0]?.tag;
const EDIT = sql`update myapi.schema_migrations set hash = 'edited' where tag = ${FIRST ?? ''}`;

interface Cli {
  code: number | null;
  stderr: string;
}

/** `myapi <args>` from the sources, as a subprocess with the given database. */
function cli(args: string[], dsn: string): Promise<Cli> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', ...args],
      {
        cwd: ROOT,
        env: { ...process.env, MYAPI_DATABASE__DSN: dsn, MYAPI_TOKEN_KEY: TOKEN_KEY },
        timeout: 120_000,
      },
      (error, _stdout, stderr) => {
        resolve({ code: error === null ? 0 : (error.code as number | null), stderr });
      },
    );
  });
}

/** A database of each kind that subprocesses can reach, and how to edit it from here. */
async function target(
  kind: DatabaseKind,
): Promise<{ dsn: string; edit(): Promise<void>; remove(): Promise<void> }> {
  if (kind === 'postgres') {
    const server = await createServerDatabase();
    return {
      dsn: server.dsn,
      async edit() {
        const client = new pg.Client({ connectionString: server.dsn });
        await client.connect();
        try {
          await client.query("update myapi.schema_migrations set hash = 'edited' where tag = $1", [
            FIRST,
          ]);
        } finally {
          await client.end();
        }
      },
      remove: () => server.drop(),
    };
  }
  const embedded = temporaryEmbedded('myapi-migration-guard-');
  return {
    dsn: embedded.settings.database.dsn,
    async edit() {
      const database = await openDatabase(embedded.settings, { role: 'tool' });
      try {
        await database.db.execute(EDIT);
      } finally {
        await database.close();
      }
    },
    async remove() {
      embedded.remove();
    },
  };
}

describeEachDatabase('an applied migration that changed', (kind) => {
  it('stops migrate() and the start-up check, naming the migration', async () => {
    const t = await createTestDatabase(kind);
    try {
      await t.database.db.execute(EDIT);
      const named = (error: unknown) =>
        error instanceof MigrationChangedError && error.message.includes(FIRST ?? '?');
      await assert.rejects(migrate(t.database.db), named);
      await assert.rejects(pendingMigrations(t.database.db), named);
    } finally {
      await t.close();
    }
  });

  describe('through the command line', () => {
    let db: Awaited<ReturnType<typeof target>>;
    before(async () => {
      db = await target(kind);
    });
    after(async () => {
      await db.remove();
    });

    it('`migrate` and a command that needs the tables exit 1 with one line naming it', async () => {
      const first = await cli(['migrate'], db.dsn);
      assert.equal(first.code, 0, first.stderr);
      assert.equal((await cli(['users', 'list'], db.dsn)).code, 0);
      await db.edit();
      for (const args of [['migrate'], ['users', 'list']]) {
        const { code, stderr } = await cli(args, db.dsn);
        assert.equal(code, 1, `${args.join(' ')}: ${stderr}`);
        const lines = stderr.split('\n').filter((line) => line.trim() !== '');
        assert.equal(lines.length, 1, stderr);
        assert.match(lines[0] ?? '', new RegExp(`migration ${FIRST ?? '?'} changed`));
      }
    });
  });
});
