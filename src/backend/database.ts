import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { unaccent } from '@electric-sql/pglite/contrib/unaccent';
import { sql, type SQL } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import pg from 'pg';
import * as schema from '../models/index.js';
import { rootCause } from '../exc.js';
import type { Settings } from './config.js';
import { queryArrayRows } from './array_rows_query.js';
import { ChannelListener, type NotificationHandler } from './listener.js';
import { keepProtocolSequencesTogether } from './socket_batching.js';
import {
  SOCKET_PORT,
  acquireLock,
  readLockHolder,
  type LockHolder,
  socketDirFor,
  socketPath,
  embeddedTokenKey,
} from './embedded.js';

export type Schema = typeof schema;
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
   * Hears NOTIFY on a channel until the database is closed. Only a PostgreSQL server offers it:
   * an embedded database serves one process, which needs no telling.
   */
  listen?: (channel: string, handler: NotificationHandler) => void;
}

/** Where the database layer says what it did on its own (made a key, fell back to one). */
export interface DatabaseLog {
  info(message: string): void;
  warn(message: string): void;
}

/** The database cannot be reached: a 503 for HTTP clients, one line for the CLI. */
export class DatabaseUnavailableError extends Error {
  constructor(label: string, cause: unknown) {
    super(`cannot reach the database ${label}: ${describeCause(cause)}`, { cause });
    this.name = 'DatabaseUnavailableError';
  }
}

/**
 * The driver's own reason, on one line. Drizzle wraps driver errors as "Failed query: <sql>
 * params: ..." with the reason on `cause`; the innermost error is the one that says why.
 */
function describeCause(cause: unknown): string {
  const error = rootCause(cause);
  if (error instanceof AggregateError && error.errors.length > 0) {
    return describeCause(error.errors[0]);
  }
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  const message = error.message.replace(/\s+/g, ' ').trim();
  return code !== undefined && !message.includes(code) ? `${message} (${code})` : message;
}

// SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown, crash).
const UNAVAILABLE_SQLSTATE = /^(08|57P)/;
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
]);
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Client was closed|Cannot use a pool after calling end|PGlite is closed/i;

/** True when an error (or its cause, as Drizzle wraps driver errors) means the database is gone. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof DatabaseUnavailableError) return true;
    const code = (e as { code?: unknown }).code;
    if (
      typeof code === 'string' &&
      (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))
    )
      return true;
    if (UNAVAILABLE_MESSAGE.test(e.message)) return true;
  }
  return false;
}

/** The SQLSTATE of a driver error, which Drizzle puts on `cause`. */
export function sqlState(error: unknown): string | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

export function parseDsn(dsn: string): Dsn {
  if (/^postgres(ql)?:\/\//.test(dsn)) return { kind: 'postgres', url: dsn };
  const target = dsn.replace(/^pglite:/, '');
  if (target === 'memory' || target === 'memory://') return { kind: 'pglite', dataDir: undefined };
  return { kind: 'pglite', dataDir: resolve(target) };
}

/** postgresql://user:secret@host/db -> postgresql://user@host/db, for messages and logs. */
export function redactDsn(dsn: string): string {
  try {
    const url = new URL(dsn);
    url.password = '';
    return url.toString().replace(/:@/, '@');
  } catch {
    return dsn.replace(/\/\/[^@/]*@/, '//');
  }
}

/**
 * The query configs of named array-mode statements, one per name. pg copies a config by its
 * property descriptors on every call (since 8.23.1): ~1.8 us for an object literal (~6 us per
 * request in the by-id profile), against ~0.1 us for an object that only inherits its
 * properties. So each call gets a fresh empty object whose prototype is the statement's frozen
 * config.
 */
function namedStatements(): (name: string, text: string) => pg.QueryArrayConfig {
  const configs = new Map<string, Readonly<pg.QueryArrayConfig>>();
  return (name, text) => {
    let config = configs.get(name);
    if (config === undefined) {
      config = Object.freeze({ name, text, rowMode: 'array' as const });
      configs.set(name, config);
    } else if (config.text !== text) {
      // PostgreSQL would refuse it too, but only on a connection that already prepared the name.
      throw new Error(`prepared statement ${name} was given another query`);
    }
    return Object.create(config) as pg.QueryArrayConfig;
  };
}

/**
 * Up to `poolMax` connections, kept open once made: pg-pool's idle timeout would set a timer on
 * every release and clear it on the next checkout (~1.5 us per query on the hot reads), to close
 * connections that a pool this small may as well keep. A request that waits 5 s for a
 * connection (the database stopped answering) fails instead of waiting on.
 */
function poolSizing(poolMax: number): pg.PoolConfig {
  return { max: poolMax, idleTimeoutMillis: 0, connectionTimeoutMillis: 5000 };
}

function poolDatabase(
  pool: pg.Pool,
  label: string,
  dsn: Dsn,
  onClose: () => Promise<void>,
): Database {
  // An idle client losing its server emits 'error' on the pool; unhandled, it would end the process.
  pool.on('error', () => undefined);
  const db = drizzlePg({ client: pool, schema }) as unknown as AppDb;
  const statement = namedStatements();
  return {
    db,
    async queryArrays(name, text, params) {
      return queryArrayRows(pool, statement(name, text), params);
    },
    label,
    dsn,
    async ping() {
      await db.execute(sql`select 1`);
    },
    async close() {
      await pool.end();
      await onClose();
    },
  };
}

async function checkReachable(database: Database): Promise<Database> {
  try {
    await database.ping();
    return database;
  } catch (error) {
    await database.close().catch(() => undefined);
    throw new DatabaseUnavailableError(database.label, error);
  }
}

function inProcessPglite(
  client: PGlite,
  label: string,
  dsn: Dsn,
  onClose: () => Promise<void>,
): Database {
  const db = drizzlePglite({ client, schema }) as unknown as AppDb;
  // PGlite runs the text as given; the names are still checked, as on a server.
  const statement = namedStatements();
  return {
    db,
    async queryArrays(name, text, params) {
      statement(name, text);
      const result = await client.query<unknown[]>(text, params, { rowMode: 'array' });
      return result.rows;
    },
    label,
    dsn,
    async ping() {
      await db.execute(sql`select 1`);
    },
    async close() {
      await client.close();
      await onClose();
    },
  };
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

/**
 * PGlite ships contrib extensions as separate modules that must be loaded at creation; the movies
 * migration creates unaccent and pg_trgm (title search), which a PostgreSQL server has built in.
 */
const PGLITE_EXTENSIONS = { unaccent, pg_trgm };

/** Connects to what MYAPI_DATABASE__DSN names and checks the connection once. */
export async function openDatabase(settings: Settings, options: OpenOptions): Promise<Database> {
  const dsn = parseDsn(settings.database.dsn);
  const poolMax = options.poolMax ?? settings.database.pool_max;
  if (dsn.kind === 'postgres') {
    const label = redactDsn(dsn.url);
    const pool = new pg.Pool({ connectionString: dsn.url, ...poolSizing(poolMax) });
    const listeners: ChannelListener[] = [];
    const database = poolDatabase(pool, label, dsn, async () => {
      await Promise.all(listeners.map((listener) => listener.close()));
    });
    return checkReachable({
      ...database,
      listen(channel, handler) {
        const listener = new ChannelListener(dsn.url, channel, handler);
        listeners.push(listener);
        listener.start();
      },
    });
  }
  if (dsn.dataDir === undefined) {
    const client = await PGlite.create({ extensions: PGLITE_EXTENSIONS });
    return inProcessPglite(client, 'pglite:memory', dsn, async () => undefined);
  }
  return openEmbedded(dsn.dataDir, dsn, poolMax, options);
}

async function openEmbedded(
  dataDir: string,
  dsn: Dsn,
  poolMax: number,
  options: OpenOptions,
): Promise<Database> {
  const label = `pglite:${dataDir}`;
  const command = options.command ?? process.argv.slice(1).join(' ');
  const holder = options.role === 'tool' ? await serverWhenListening(dataDir, options) : undefined;
  if (holder?.socketDir !== undefined) {
    return checkReachable(socketClient(holder.socketDir, poolMax, label, dsn));
  }

  const release = acquireLock(dataDir, {
    command,
    ...(options.role === 'server' ? { socketDir: socketDirFor(dataDir) } : {}),
  });
  let client: PGlite | undefined;
  try {
    client = await PGlite.create(dataDir, { extensions: PGLITE_EXTENSIONS });
    if (options.role === 'tool') {
      return inProcessPglite(client, label, dsn, async () => {
        release();
      });
    }
    return await shareOverSocket(client, dataDir, dsn, poolMax, label, release);
  } catch (error) {
    await client?.close().catch(() => undefined);
    release();
    throw error;
  }
}

/** A first start creates, migrates and fills the database before its socket opens: seconds. */
const SERVER_START_WAIT_MS = 60_000;

/**
 * Who holds an embedded database, waiting while it is a server that has not opened its socket
 * yet: a server takes the lock before it opens the database, so a command run during its start
 * would otherwise fail on a missing socket. A server that dies meanwhile leaves no holder; one
 * still without a socket after a minute is left to the connection attempt to report.
 */
async function serverWhenListening(
  dataDir: string,
  options: OpenOptions,
): Promise<LockHolder | undefined> {
  const deadline = Date.now() + SERVER_START_WAIT_MS;
  for (let told = false; ; told = true) {
    const holder = readLockHolder(dataDir);
    if (holder?.socketDir === undefined || existsSync(socketPath(holder.socketDir))) return holder;
    if (Date.now() > deadline) return holder;
    if (!told) {
      options.onWait?.(
        `waiting for process ${holder.pid} (${holder.command}) to open the embedded database`,
      );
    }
    await sleep(100);
  }
}

function socketPool(socketDir: string, poolMax: number, extra: pg.PoolConfig = {}): pg.Pool {
  return new pg.Pool({
    host: socketDir,
    port: SOCKET_PORT,
    user: 'postgres',
    database: 'postgres',
    ...poolSizing(poolMax),
    ...extra,
  });
}

function socketClient(socketDir: string, poolMax: number, label: string, dsn: Dsn): Database {
  return poolDatabase(socketPool(socketDir, poolMax), label, dsn, async () => undefined);
}

/**
 * The server reaches its own PGlite through the socket too: pglite-socket queues every
 * connection's statements and keeps a transaction's statements together, which in-process
 * queries running beside socket clients would not respect.
 */
async function shareOverSocket(
  client: PGlite,
  dataDir: string,
  dsn: Dsn,
  poolMax: number,
  label: string,
  release: () => void,
): Promise<Database> {
  const socketDir = socketDirFor(dataDir);
  mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  const path = socketPath(socketDir);
  // Only a dead holder can have left a socket behind: the lock proved no one else is here.
  if (existsSync(path)) rmSync(path);
  const server = new PGLiteSocketServer({ db: client, path, maxConnections: poolMax + 8 });
  keepProtocolSequencesTogether(server);
  await server.start();
  // One connection: PGlite has one session, so more would add no parallelism, and pg's
  // per-connection cache of named prepared statements would be wrong (a second connection
  // parsing the hot reads' statements again gets "prepared statement already exists").
  // The session outlives the connection: pg-pool replaces a connection after any failed query,
  // and the new one would find the old one's statements and fail every hot read on "already
  // exists". So a new connection drops them before pg-pool hands it out (pg-pool 3.14 waits for
  // the promise its onConnect returns, which @types/pg does not declare).
  const dropStatements = async (connection: pg.ClientBase) => {
    await connection.query('deallocate all');
  };
  const pool = socketPool(socketDir, 1, {
    // eslint-disable-next-line @typescript-eslint/no-misused-promises -- pg-pool awaits it
    onConnect: dropStatements,
  });
  const database = poolDatabase(pool, label, dsn, async () => undefined);
  return checkReachable({
    ...database,
    async close() {
      await database.close();
      await server.stop();
      await client.close();
      rmSync(path, { force: true });
      release();
    },
  });
}

/** The secret that signs access tokens: configured, or made once and kept with embedded data. */
export function resolveTokenKey(settings: Settings, dsn: Dsn, log: DatabaseLog): string {
  if (settings.token_key !== undefined) return settings.token_key;
  if (dsn.kind === 'pglite' && dsn.dataDir !== undefined) {
    const { key, created, path } = embeddedTokenKey(dsn.dataDir);
    if (created) log.info(`generated a token signing key and kept it in ${path}`);
    return key;
  }
  if (dsn.kind === 'pglite') {
    log.warn('no MYAPI_TOKEN_KEY: using a random key, so tokens end with this process');
    return embeddedTokenKeyForMemory;
  }
  // loadSettings refuses this case; kept as a guard for callers that build Settings by hand.
  throw new Error('MYAPI_TOKEN_KEY is required with a PostgreSQL server DSN');
}

const embeddedTokenKeyForMemory = randomBytes(48).toString('base64url');

// ------------------------------------------------------------------------------ migrations

const MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle', import.meta.url));
const BREAKPOINT = '--> statement-breakpoint';
/** Any fixed number: serialises concurrent `migrate` runs against one server. */
const MIGRATION_LOCK = 72_410_001;

interface Migration {
  tag: string;
  hash: string;
  statements: string[];
}

function readMigrations(): Migration[] {
  const journal = JSON.parse(
    readFileSync(join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8'),
  ) as {
    entries: { tag: string }[];
  };
  return journal.entries.map(({ tag }) => {
    const text = readFileSync(join(MIGRATIONS_DIR, `${tag}.sql`), 'utf8');
    return {
      tag,
      hash: createHash('sha256').update(text).digest('hex'),
      statements: text
        .split(BREAKPOINT)
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    };
  });
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: string[];
}

/**
 * Applies drizzle-kit's SQL files that this database has not seen, all in one transaction under an
 * advisory lock: either every pending migration lands or none does, and two runs never interleave.
 */
export async function migrate(
  db: AppDb,
  onApplied?: (tag: string) => void,
): Promise<MigrationReport> {
  const migrations = readMigrations();
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.execute(sql`create schema if not exists myapi`);
    await tx.execute(sql`
      create table if not exists myapi.schema_migrations (
        tag text primary key,
        hash text not null,
        applied_at timestamptz not null default now()
      )`);
    const rows = await queryRows<{ tag: string }>(tx, sql`select tag from myapi.schema_migrations`);
    const done = new Set(rows.map((row) => row.tag));
    const report: MigrationReport = { applied: [], alreadyApplied: [] };
    for (const migration of migrations) {
      if (done.has(migration.tag)) {
        report.alreadyApplied.push(migration.tag);
        continue;
      }
      for (const statement of migration.statements) await tx.execute(sql.raw(statement));
      await tx.execute(
        sql`insert into myapi.schema_migrations (tag, hash) values (${migration.tag}, ${migration.hash})`,
      );
      report.applied.push(migration.tag);
      onApplied?.(migration.tag);
    }
    return report;
  });
}

/** Migrations in the repository that this database has not applied yet. */
export async function pendingMigrations(db: AppDb): Promise<string[]> {
  const [table] = await queryRows<{ name: string | null }>(
    db,
    sql`select to_regclass('myapi.schema_migrations')::text as name`,
  );
  const done =
    table?.name == null
      ? new Set<string>()
      : new Set(
          (await queryRows<{ tag: string }>(db, sql`select tag from myapi.schema_migrations`)).map(
            (row) => row.tag,
          ),
        );
  return readMigrations()
    .map((migration) => migration.tag)
    .filter((tag) => !done.has(tag));
}
