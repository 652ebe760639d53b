// The PostgreSQL server kind: from a postgresql:// DSN to a checked pool with session limits.
import pg from 'pg';
import type { Settings } from '../config.js';
import { ChannelListener } from '../listener.js';
import { redactDsn } from './dsn.js';
import { checkReachable, poolDatabase, poolSizing } from './pool.js';
import { openReplicas, type ReplicaSet } from './replicas.js';
import type { Database, Dsn } from './types.js';

/**
 * The server-side limits every connection starts with (pg sends them in the startup message, so
 * no statement can run before they hold): a statement, a lock wait or a transaction left idle
 * by its client frees its connection instead of holding the pool. 0 is PostgreSQL's "no limit".
 */
export function sessionLimits(settings: Settings): pg.ClientConfig {
  const { statement_timeout_ms, lock_timeout_ms, idle_in_transaction_timeout_ms } =
    settings.database;
  return {
    statement_timeout: statement_timeout_ms,
    lock_timeout: lock_timeout_ms,
    idle_in_transaction_session_timeout: idle_in_transaction_timeout_ms,
  };
}

export async function openServer(
  settings: Settings,
  dsn: Extract<Dsn, { kind: 'postgres' }>,
  poolMax: number,
  withReplicas = false,
): Promise<Database> {
  const label = redactDsn(dsn.url);
  const newPool = (url: string) =>
    new pg.Pool({
      connectionString: url,
      ...sessionLimits(settings),
      ...poolSizing(settings, poolMax),
    });
  const pool = newPool(dsn.url);
  const listeners: ChannelListener[] = [];
  const database = poolDatabase(pool, label, dsn, {
    prepared: settings.database.prepared_statements,
    async onClose() {
      await Promise.all(listeners.map((listener) => listener.close()));
      await replicas?.close();
    },
  });
  // Only a server reads from replicas: a command's reads are few and must see its own writes.
  const replicas: ReplicaSet | undefined = withReplicas
    ? openReplicas(settings, database, newPool, database.instruments)
    : undefined;
  return checkReachable({
    ...database,
    replicas,
    // Behind a pooler in transaction mode LISTEN must bypass it: MYAPI_DATABASE__LISTEN_DSN.
    listen(channel, handler) {
      const url = settings.database.listen_dsn ?? dsn.url;
      const listener = new ChannelListener(url, channel, handler);
      listeners.push(listener);
      listener.start();
    },
  });
}
