// What the database layer hands out: the Database every kind opens, its executors and options.
import type { ExtractTablesWithRelations, SQL } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import type { NotificationHandler } from '../listener.js';
import type { ReplicaSet } from './replicas.js';
import type { DatabaseInstruments } from './instruments.js';

/** No relational query API: CRUD classes build their queries from the tables they import. */
export type Schema = Record<string, never>;
export type AppDb = PgDatabase<PgQueryResultHKT, Schema>;
export type AppTx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** What a CRUD method runs on: the database, or a transaction a service opened. */
export type Executor = AppDb | AppTx;

/** Runs raw SQL and returns its rows: both drivers answer with `{ rows }`. */
export async function queryRows<T>(executor: Executor, query: SQL): Promise<T[]> {
  const result = (await executor.execute(query)) as { rows: T[] };
  return result.rows;
}

export type Dsn =
  | { kind: 'postgres'; url: string }
  | { kind: 'pglite'; dataDir: string | undefined /* undefined = in memory */ };

/**
 * Runs SQL and returns rows as arrays of driver values: the shortest path a hot read can take
 * (no per-row objects from the driver or the query builder). `name` makes it a prepared statement
 * that PostgreSQL parses once per connection and may run on one generic plan.
 */
export type ArrayQuery = (name: string, text: string, params: unknown[]) => Promise<unknown[][]>;

export interface Database {
  readonly db: AppDb;
  readonly queryArrays: ArrayQuery;
  /** A description safe to print: never contains a password. */
  readonly label: string;
  readonly dsn: Dsn;
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * The pools and the query timing the metrics read; absent where no pool stands between this
   * process and the database (PGlite in this process: pglite:memory, or a tool's own embedded).
   */
  readonly instruments?: DatabaseInstruments;
  /**
   * Hears NOTIFY on a channel until the database is closed. Only a PostgreSQL server offers it:
   * an embedded database serves one process, which needs no telling.
   */
  listen?: (channel: string, handler: NotificationHandler) => void;
  /** The read replicas of MYAPI_DATABASE__REPLICAS, for a server on a PostgreSQL primary. */
  readonly replicas?: ReplicaSet;
}

/** Where the database layer says what it did on its own (made a key, fell back to one). */
export interface DatabaseLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface OpenOptions {
  /**
   * 'server' opens an embedded database exclusively and shares it over a Unix socket;
   * 'tool' (the CLI) goes through a running server's socket, or opens the database itself.
   */
  role: 'server' | 'tool';
  poolMax?: number;
  /** What the lock file says holds the database, shown to a second process. */
  command?: string;
  /** Told once when a tool waits for a starting server to open the embedded database. */
  onWait?: (message: string) => void;
}
