// A directory and settings where `myapi serve`, run as a user runs it, finds a ready database.
import assert from 'node:assert/strict';
import { TOKEN_KEY, createServerDatabase, type DatabaseKind } from './databases.js';
import { createUser, runCli, startServer, tempDir } from './process.js';

export interface ServedDatabase {
  cwd: string;
  env: Record<string, string>;
  /** Drops the PostgreSQL database (the embedded one goes with its temporary directory). */
  drop: () => Promise<void>;
}

/**
 * A new directory holding, or pointing at, a database with the test user (USER): the embedded
 * one, created and seeded by a first start of the server; or a new database on the PostgreSQL
 * server, set up by the CLI `commands` (migrate, and seed unless told).
 */
export async function servedDatabase(
  kind: DatabaseKind,
  commands: readonly string[] = ['migrate', 'seed'],
): Promise<ServedDatabase> {
  const cwd = tempDir();
  let env: Record<string, string> = {};
  let drop = () => Promise.resolve();
  if (kind === 'postgres') {
    const database = await createServerDatabase();
    drop = database.drop;
    env = { MYAPI_DATABASE__DSN: database.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
    for (const command of commands) {
      const { exit, proc } = await runCli([command], cwd, env);
      assert.equal(exit.code, 0, proc.show());
    }
  } else {
    const first = await startServer(cwd);
    assert.equal((await first.stop()).code, 0, first.show());
  }
  await createUser(cwd, env);
  return { cwd, env, drop };
}
