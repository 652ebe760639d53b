// Apps built on a test database the caller owns: several instances on one database, or custom settings.
import { buildApp, type App } from '../../src/app.js';
import type { Settings } from '../../src/backend/config.js';
import { createLogger } from '../../src/backend/logging.js';
import { LogCapture, TOKEN_KEY, type TestDatabase } from './databases.js';

export interface AppOnDatabase {
  app: App;
  logs: LogCapture;
}

/**
 * A ready app on `t`'s database with some settings changed; closing it leaves the database open.
 * Two of these on one PostgreSQL database behave like two server processes sharing it.
 */
export async function appOn(
  t: TestDatabase,
  changes: Partial<Settings> = {},
  database = t.database,
): Promise<AppOnDatabase> {
  const logs = new LogCapture();
  const app = await buildApp({
    settings: { ...t.settings, log_level: 'info', ...changes },
    database,
    tokenKey: TOKEN_KEY,
    logger: createLogger('info', logs),
  });
  await app.ready();
  return { app, logs };
}
