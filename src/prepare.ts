/** prepareDatabase: makes an opened database ready for the server and the CLI's commands. */
import type { Logger } from 'pino';
import { createServices } from './services/index.js';
import type { Database } from './backend/database.js';
import { migrate, pendingMigrations } from './backend/database.js';

export class NotMigratedError extends Error {
  constructor(pending: string[]) {
    super(
      `the database has migrations to apply (${pending.join(', ')}): run \`myapi migrate\` first`,
    );
    this.name = 'NotMigratedError';
  }
}

/**
 * Makes a database ready for use. The embedded database is the zero-setup default, so it is
 * migrated, and given the demo catalogue when it has no movies, without being asked; a server
 * database changes only through `myapi migrate`, and using it unmigrated is refused with a hint.
 */
export async function prepareDatabase(
  database: Database,
  log: Pick<Logger, 'info'>,
): Promise<void> {
  if (database.dsn.kind !== 'pglite') {
    const pending = await pendingMigrations(database.db);
    if (pending.length > 0) throw new NotMigratedError(pending);
    return;
  }
  const { applied } = await migrate(database.db);
  if (applied.length > 0) log.info({ applied }, 'applied migrations to the embedded database');
  const { movies } = createServices(database);
  if (applied.length > 0 && (await movies.isEmpty())) {
    const { inserted } = await movies.seedDemo();
    log.info(`loaded ${inserted} demo movies`);
  }
}
