// The PostgreSQL server the tests use: its DSN, its `test` database made when missing, and
// connection errors that name the DSN and the real cause.
import pg from 'pg';
import { scaled } from './timeouts.js';

export const ADMIN_DSN = process.env.TEST_PG_DSN ?? 'postgresql://postgres@127.0.0.1:5432/test';

const HINT = 'set TEST_PG_DSN, or TEST_PG=off outside CI to run the PGlite half only';

interface ConnectError extends Error {
  code?: string;
  errors?: ConnectError[];
}

function codeOf(error: unknown): string | undefined {
  const { code, errors } = error as ConnectError;
  return code ?? errors?.find((inner) => inner.code !== undefined)?.code;
}

/** One line saying why connecting to `dsn` failed: no server, a refused login, no database. */
export function connectionProblem(dsn: string, error: unknown): string {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  const { hostname, port, pathname, username } = new URL(dsn);
  const where = `${hostname}:${port || '5432'}`;
  const database = decodeURIComponent(pathname.slice(1));
  switch (code) {
    case 'ECONNREFUSED':
      return `no PostgreSQL server is listening at ${where} (ECONNREFUSED) for ${dsn}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host of ${dsn} does not resolve (${code})`;
    case '28P01':
    case '28000':
      return `the PostgreSQL server at ${where} refused the login of user "${username}" (${code}: ${message}) for ${dsn}`;
    case '3D000':
      return `the database "${database}" does not exist on the PostgreSQL server at ${where} (${message}) for ${dsn}`;
    case '57P03':
      return `the PostgreSQL server at ${where} is starting up or shutting down (57P03) for ${dsn}`;
    default:
      return `cannot connect to the PostgreSQL server for tests at ${dsn}: ${code ?? 'error'}: ${message}`;
  }
}

/** A connected client on `dsn`; a failure names the DSN and the cause (and how to change it). */
export async function connectAdmin(dsn: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: dsn, connectionTimeoutMillis: scaled(5000) });
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new Error(`${connectionProblem(dsn, error)} (${HINT})`, { cause: error });
  }
}

/** Creates the database of `dsn` (through the server's `postgres` database) when it is missing. */
export async function ensureDatabase(dsn: string): Promise<void> {
  const probe = new pg.Client({ connectionString: dsn, connectionTimeoutMillis: scaled(5000) });
  try {
    await probe.connect();
    return;
  } catch (error) {
    if (codeOf(error) !== '3D000') return; // connectAdmin reports it with its cause
  } finally {
    await probe.end().catch(() => undefined);
  }
  const url = new URL(dsn);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const client = await connectAdmin(url.toString());
  try {
    await client.query(`create database ${client.escapeIdentifier(name)}`);
  } catch (error) {
    // 42P04: another test process created it first; 23505: the same race seen by pg_database.
    if (!['42P04', '23505'].includes(codeOf(error) ?? '')) {
      throw new Error(`could not create the database "${name}" for tests: ${String(error)}`, {
        cause: error,
      });
    }
  } finally {
    await client.end();
  }
}

let ensured: Promise<void> | undefined;

/** Creates the tests' database (`test` in ADMIN_DSN) on the server when it does not exist yet. */
export function ensureTestDatabase(): Promise<void> {
  ensured ??= ensureDatabase(ADMIN_DSN);
  return ensured;
}
