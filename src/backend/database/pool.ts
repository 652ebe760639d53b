// A Database on a pg.Pool: the PostgreSQL server kind and the embedded database's socket use it.
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Settings } from '../config.js';
import { DatabaseUnavailableError } from './errors.js';
import { DatabaseInstruments } from './instruments.js';
import { tracedPool } from './traced.js';
import type { AppDb, ArrayQuery, Database, Dsn } from './types.js';

/**
 * Up to `poolMax` connections, kept open once made: pg-pool's idle timeout would set a timer on
 * every release and clear it on the next checkout, to close connections that a pool this small
 * may as well keep. pg-pool applies connectionTimeoutMillis both to connecting and to waiting
 * for a busy pool's next free connection, so a request waits at most that long, then fails as
 * "database unavailable" (503 with Retry-After) instead of queueing behind a stuck database.
 */
export function poolSizing(settings: Settings, poolMax: number): pg.PoolConfig {
  return {
    max: poolMax,
    idleTimeoutMillis: 0,
    connectionTimeoutMillis: settings.database.acquire_timeout_ms,
  };
}

/**
 * Every connection's 'error' gets a listener: pg-pool listens only while a connection is idle,
 * so one lost while checked out (mid-transaction, between statements) would otherwise throw
 * "Unhandled 'error' event" and end the process. Its next query then fails as unavailable.
 */
export function handleConnectionErrors(pool: pg.Pool): void {
  // An idle client losing its server emits 'error' on the pool; unhandled, it would end the process.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
}

/** Named statements keep one text each: PostgreSQL would refuse another only where prepared. */
export function statementNames(): (name: string, text: string) => void {
  const texts = new Map<string, string>();
  return (name, text) => {
    const known = texts.get(name);
    if (known === undefined) texts.set(name, text);
    else if (known !== text) throw new Error(`prepared statement ${name} was given another query`);
  };
}

/**
 * `prepared` runs the hot reads as named statements, parsed once per connection. Only for a
 * PostgreSQL server: behind the embedded database's socket every connection shares PGlite's one
 * session, where a name prepared by one connection (or by one that pg-pool replaced after a
 * failed query) makes the next connection's Parse fail on "already exists".
 */
export function poolDatabase(
  pool: pg.Pool,
  label: string,
  dsn: Dsn,
  options: {
    prepared: boolean;
    onClose?: () => Promise<void>;
    /** Where the pool is reported and timed: a replica joins its primary's, under its name. */
    instruments?: { into: DatabaseInstruments; as: string };
  },
): Database {
  handleConnectionErrors(pool);
  const instruments = options.instruments?.into ?? new DatabaseInstruments();
  instruments.addPool(options.instruments?.as ?? 'primary', pool);
  // With tracing on, every statement is a span (database/traced.ts); off, this is `pool` itself.
  const client = tracedPool(pool);
  const db = drizzle({ client }) as unknown as AppDb;
  const checkName = statementNames();
  const queryArrays: ArrayQuery = async (name, text, values) => {
    checkName(name, text);
    const result = await client.query<unknown[]>(
      options.prepared
        ? { name, text, values, rowMode: 'array' }
        : { text, values, rowMode: 'array' },
    );
    return result.rows;
  };
  return {
    db,
    queryArrays,
    label,
    dsn,
    instruments,
    async ping() {
      await db.execute(sql`select 1`);
    },
    async close() {
      await pool.end();
      await options.onClose?.();
    },
  };
}

/** Checks the connection once; closes the database and says why when it cannot be reached. */
export async function checkReachable(database: Database): Promise<Database> {
  try {
    await database.ping();
    return database;
  } catch (error) {
    await database.close().catch(() => undefined);
    throw new DatabaseUnavailableError(database.label, error);
  }
}
