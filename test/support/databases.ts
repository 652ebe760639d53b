import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, type TestOptions } from 'node:test';
import pg from 'pg';
import { buildApp, type App } from '../../src/app.js';
import { loadSettings, type Settings } from '../../src/backend/config.js';
import {
  migrate,
  openDatabase,
  type ArrayQuery,
  type Database,
} from '../../src/backend/database.js';
import { createLogger } from '../../src/backend/logging.js';
import { ADMIN_DSN, connectAdmin, ensureTestDatabase } from './server_database.js';

/**
 * Every suite runs against PGlite in memory and against the PostgreSQL server. The server is
 * required: unreachable, it fails the run. TEST_PG=off skips it on a machine without one
 * (refused when CI=true, so CI can never pass without the real server).
 */
export { ADMIN_DSN } from './server_database.js';
export const TOKEN_KEY = 'test-signing-key-that-is-long-enough-0123456789';

export type DatabaseKind = 'pglite' | 'postgres';

export function databaseKinds(): DatabaseKind[] {
  if (process.env.TEST_PG === 'off') {
    if (process.env.CI === 'true') throw new Error('TEST_PG=off is not allowed when CI=true');
    return ['pglite'];
  }
  return ['pglite', 'postgres'];
}

export interface DatabaseSuiteOptions extends TestOptions {
  /** The kinds this suite runs on (default: every kind of databaseKinds()). */
  kinds?: readonly DatabaseKind[];
}

/**
 * `describe(name (kind), options, ...)` once per database kind: the one place that decides on
 * which databases a data suite runs.
 */
export function describeEachDatabase(
  name: string,
  options: DatabaseSuiteOptions,
  fn: (kind: DatabaseKind) => void,
): void;
export function describeEachDatabase(name: string, fn: (kind: DatabaseKind) => void): void;
export function describeEachDatabase(
  name: string,
  optionsOrFn: DatabaseSuiteOptions | ((kind: DatabaseKind) => void),
  maybeFn?: (kind: DatabaseKind) => void,
): void {
  const { kinds, ...options } = typeof optionsOrFn === 'function' ? {} : optionsOrFn;
  const fn = typeof optionsOrFn === 'function' ? optionsOrFn : maybeFn;
  if (fn === undefined) throw new Error('describeEachDatabase needs a suite function');
  for (const kind of databaseKinds()) {
    if (kinds !== undefined && !kinds.includes(kind)) continue;
    describe(`${name} (${kind})`, options, () => {
      fn(kind);
    });
  }
}

export function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  await ensureTestDatabase();
  const client = await connectAdmin(ADMIN_DSN);
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
/** A new, empty database on the server; returns its DSN and a function that drops it. */
export async function createServerDatabase(): Promise<{ dsn: string; drop: () => Promise<void> }> {
  const name = `myapi_test_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`create database ${name}`));
  return {
    dsn: withDatabase(ADMIN_DSN, name),
    drop: async () => {
      await admin((client) => client.query(`drop database if exists ${name} with (force)`));
    },
  };
}

/** Whether PostgreSQL holds statistics of the movies table's columns (ANALYZE has run). */
export async function moviesAnalyzed(dsn: string): Promise<boolean> {
  const client = await connectAdmin(dsn);
  try {
    const { rows } = await client.query<{ n: number }>(
      "select count(*)::int as n from pg_stats where schemaname = 'myapi' and tablename = 'movies'",
    );
    return (rows[0]?.n ?? 0) > 0;
  } finally {
    await client.end();
  }
}

/** The settings of an embedded database in a new temporary directory, and its removal. */
export function temporaryEmbedded(prefix: string): { settings: Settings; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const { settings } = loadSettings({
    env: { MYAPI_DATABASE__DSN: `pglite:${join(dir, 'pgdata')}` },
    cwd: '/nonexistent',
  });
  return {
    settings,
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestDatabase {
  kind: DatabaseKind;
  dsn: string;
  settings: Settings;
  database: Database;
  close(): Promise<void>;
}

export async function createTestDatabase(
  kind: DatabaseKind,
  options: { migrated?: boolean } = {},
): Promise<TestDatabase> {
  const server = kind === 'postgres' ? await createServerDatabase() : undefined;
  const dsn = server?.dsn ?? 'pglite:memory';
  const { settings } = loadSettings({
    env: { MYAPI_DATABASE__DSN: dsn, MYAPI_TOKEN_KEY: TOKEN_KEY, MYAPI_DATABASE__POOL_MAX: '4' },
    cwd: '/nonexistent',
  });
  const database = await openDatabase(settings, { role: 'tool' });
  if (options.migrated !== false) await migrate(database.db);
  return {
    kind,
    dsn,
    settings,
    database,
    async close() {
      await database.close();
      await server?.drop();
    },
  };
}

/**
 * Watches a database's hot reads (`queryArrays`, through `wrap`): `runs` lists each statement run,
 * by name and parameters, and `failNext` makes the next run (of one name, if given) fail instead.
 */
export class QueryWatch {
  readonly runs: { name: string; params: unknown[] }[] = [];
  private failure: { error: Error; name: string | undefined } | undefined;

  failNext(error: Error, name?: string): void {
    this.failure = { error, name };
  }

  readonly wrap =
    (inner: ArrayQuery): ArrayQuery =>
    (name, text, params) => {
      this.runs.push({ name, params });
      const { failure } = this;
      if (failure === undefined || (failure.name !== undefined && failure.name !== name)) {
        return inner(name, text, params);
      }
      this.failure = undefined;
      return Promise.reject(failure.error);
    };
}

/** Collects JSON log lines so tests can read what was logged. */
export class LogCapture extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];

  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line === '') continue;
      this.raw.push(line);
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    done();
  }
}

export interface TestApp extends TestDatabase {
  app: App;
  logs: LogCapture;
}

export async function createTestApp(
  kind: DatabaseKind,
  options: {
    tokenKey?: string;
    tokenExpireMinutes?: number;
    passwords?: Partial<Settings['passwords']>;
    /** What the app's services get instead of the database's own queries (to watch them). */
    queryArrays?: (inner: ArrayQuery) => ArrayQuery;
  } = {},
): Promise<TestApp> {
  const testDb = await createTestDatabase(kind);
  const logs = new LogCapture();
  const settings = {
    ...testDb.settings,
    log_level: 'info' as const,
    token_expire_minutes: options.tokenExpireMinutes ?? 60,
    passwords: { ...testDb.settings.passwords, ...options.passwords },
  };
  const app = await buildApp({
    settings,
    database:
      options.queryArrays === undefined
        ? testDb.database
        : { ...testDb.database, queryArrays: options.queryArrays(testDb.database.queryArrays) },
    tokenKey: options.tokenKey ?? TOKEN_KEY,
    logger: createLogger('info', logs),
  });
  await app.ready();
  return {
    ...testDb,
    app,
    logs,
    async close() {
      await app.close();
      await testDb.close();
    },
  };
}
