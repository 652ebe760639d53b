// The database layer's one entry: openDatabase decides the kind once and hands over to its module.
import type { Settings } from './config.js';
import { parseDsn } from './database/dsn.js';
import { openEmbedded } from './database/embedded.js';
import { openMemory } from './database/pglite.js';
import { openServer } from './database/server.js';
import type { Database, OpenOptions } from './database/types.js';

export type {
  AppDb,
  AppTx,
  ArrayQuery,
  Database,
  DatabaseLog,
  Dsn,
  Executor,
  OpenOptions,
  Schema,
} from './database/types.js';
export { queryRows } from './database/types.js';
export { writesTogether } from './database/together.js';
export { ReadRouter, type ReaderKey, type ReplicaSet } from './database/replicas.js';
export { parseDsn, redactDsn } from './database/dsn.js';
export {
  DatabaseUnavailableError,
  describeUnavailable,
  isDatabaseUnavailable,
  sqlState,
} from './database/errors.js';
export { DatabaseInUseError, resolveTokenKey } from './database/embedded.js';
export {
  MigrationChangedError,
  migrate,
  pendingMigrations,
  type MigrationReport,
} from './database/migrations.js';

/** Connects to what MYAPI_DATABASE__DSN names and checks the connection once. */
export async function openDatabase(settings: Settings, options: OpenOptions): Promise<Database> {
  const dsn = parseDsn(settings.database.dsn);
  const poolMax = options.poolMax ?? settings.database.pool_max;
  if (dsn.kind === 'postgres') return openServer(settings, dsn, poolMax, options.role === 'server');
  if (dsn.dataDir === undefined) return openMemory(dsn);
  return openEmbedded(settings, dsn.dataDir, dsn, poolMax, options);
}
