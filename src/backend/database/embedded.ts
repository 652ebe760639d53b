// The embedded kind: from pglite:<dir> to a ready database (lock, Unix socket, signing key).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Settings } from '../config.js';
import { sharedSocketServer } from '../internals/pglite_socket_queue.js';
import { inProcessPglite, PGLITE_EXTENSIONS } from './pglite.js';
import { checkReachable, poolDatabase, poolSizing } from './pool.js';
import type { Database, DatabaseLog, Dsn, OpenOptions } from './types.js';

/*
 * PGlite takes no lock on its directory and can serve only one process, so the process that
 * opens it writes a lock file naming itself and, when it is a server, the Unix socket through
 * which other processes (the CLI) reach the same database.
 */

const LOCK_FILE = 'myapi.lock';
const KEY_FILE = 'myapi-token.key';
/** libpq and pg find a server socket as <directory>/.s.PGSQL.<port>. */
export const SOCKET_PORT = 5432;
const SOCKET_NAME = `.s.PGSQL.${SOCKET_PORT}`;
/** sun_path holds 108 bytes on Linux; beyond that the socket goes to a short directory in /tmp. */
const MAX_SOCKET_PATH = 100;

export interface LockHolder {
  pid: number;
  command: string;
  /** Directory of the Unix socket when the holder is a server sharing the database. */
  socketDir?: string;
}

export class DatabaseInUseError extends Error {
  constructor(dataDir: string, holder: LockHolder) {
    super(
      `the embedded database ${dataDir} is in use by process ${holder.pid} (${holder.command}); ` +
        'stop it first, or set MYAPI_DATABASE__DSN to another database',
    );
    this.name = 'DatabaseInUseError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readLockHolder(dataDir: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')) as LockHolder;
    return isAlive(holder.pid) ? holder : undefined;
  } catch {
    return undefined;
  }
}

export function socketDirFor(dataDir: string): string {
  const preferred = resolve(dataDir);
  if (join(preferred, SOCKET_NAME).length <= MAX_SOCKET_PATH) return preferred;
  const digest = createHash('sha256').update(preferred).digest('hex').slice(0, 16);
  return join(tmpdir(), `myapi-${digest}`);
}

export function socketPath(socketDir: string): string {
  return join(socketDir, SOCKET_NAME);
}

/**
 * Takes the lock, so two processes can never both open the directory; a lock left by a process
 * that died is replaced. Returns the function that releases it.
 *
 * The lock appears whole: it is written to a file of its own first and then hard-linked to its
 * name, which fails if the name exists. Created empty and then written, it could be read between
 * the two steps, by another process that would take it for a dead holder's and replace it.
 */
export function acquireLock(dataDir: string, holder: Omit<LockHolder, 'pid'>): () => void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, LOCK_FILE);
  const draft = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`;
  writeFileSync(draft, JSON.stringify({ ...holder, pid: process.pid }), {
    mode: 0o600,
    flag: 'wx',
  });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(draft, path);
        return () => {
          rmSync(path, { force: true });
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const current = readLockHolder(dataDir);
        if (current !== undefined) throw new DatabaseInUseError(dataDir, current);
        rmSync(path, { force: true });
      }
    }
  } finally {
    rmSync(draft, { force: true });
  }
  throw new Error(`could not lock the embedded database ${dataDir}`);
}

/**
 * The HS256 key an embedded database made before the key set existed, if any. It is no longer
 * made: a new installation signs with the key set (EdDSA); an older one keeps accepting the
 * tokens this key signed (services/keys/setup.ts).
 */
export function embeddedTokenKey(dataDir: string): { key: string; path: string } | undefined {
  const path = join(dataDir, KEY_FILE);
  try {
    return { key: readFileSync(path, 'utf8').trim(), path };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return undefined;
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

function socketPool(
  settings: Settings,
  socketDir: string,
  poolMax: number,
  connectTimeoutMs = settings.database.acquire_timeout_ms,
): pg.Pool {
  return new pg.Pool({
    host: socketDir,
    port: SOCKET_PORT,
    user: 'postgres',
    database: 'postgres',
    ...poolSizing(settings, poolMax),
    connectionTimeoutMillis: connectTimeoutMs,
  });
}

/** How long a command stays quiet before it says it waits for a busy server. */
const BUSY_NOTICE_MS = 1000;

/**
 * A command's connection through a running server's socket. pglite-socket answers it only when
 * the server's own work leaves PGlite's one session free: the migration and seed of a first start,
 * or any long transaction, hold it for seconds on a busy machine. So a command waits as long as it
 * would for the server to start (saying so after a second) instead of failing on the server's
 * one-second acquire timeout, which exists for HTTP requests.
 */
async function throughServer(
  settings: Settings,
  holder: LockHolder & { socketDir: string },
  label: string,
  dsn: Dsn,
  poolMax: number,
  options: OpenOptions,
): Promise<Database> {
  const connectTimeoutMs = Math.max(settings.database.acquire_timeout_ms, SERVER_START_WAIT_MS);
  const pool = socketPool(settings, holder.socketDir, poolMax, connectTimeoutMs);
  const notice = setTimeout(() => {
    options.onWait?.(
      `waiting for process ${holder.pid} (${holder.command}): the embedded database is busy`,
    );
  }, BUSY_NOTICE_MS);
  try {
    return await checkReachable(poolDatabase(pool, label, dsn, { prepared: false }));
  } finally {
    clearTimeout(notice);
  }
}

/**
 * The server reaches its own PGlite through the socket too: pglite-socket queues every
 * connection's statements and keeps a transaction's statements together, which in-process
 * queries running beside socket clients would not respect.
 */
async function shareOverSocket(
  settings: Settings,
  client: PGlite,
  dataDir: string,
  dsn: Dsn,
  poolMax: number,
  release: () => void,
): Promise<Database> {
  const socketDir = socketDirFor(dataDir);
  mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  const path = socketPath(socketDir);
  // Only a dead holder can have left a socket behind: the lock proved no one else is here.
  if (existsSync(path)) rmSync(path);
  const { server } = sharedSocketServer(client, path, poolMax + 8);
  await server.start();
  // One connection: PGlite has one session, so more would add no parallelism.
  const pool = socketPool(settings, socketDir, 1);
  const database = poolDatabase(pool, `pglite:${dataDir}`, dsn, { prepared: false });
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

/** Opens pglite:<dataDir>: through a running server's socket, or itself under the lock. */
export async function openEmbedded(
  settings: Settings,
  dataDir: string,
  dsn: Dsn,
  poolMax: number,
  options: OpenOptions,
): Promise<Database> {
  const label = `pglite:${dataDir}`;
  const command = options.command ?? process.argv.slice(1).join(' ');
  const holder = options.role === 'tool' ? await serverWhenListening(dataDir, options) : undefined;
  if (holder?.socketDir !== undefined) {
    return throughServer(
      settings,
      { ...holder, socketDir: holder.socketDir },
      label,
      dsn,
      poolMax,
      options,
    );
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
    return await shareOverSocket(settings, client, dataDir, dsn, poolMax, release);
  } catch (error) {
    await client?.close().catch(() => undefined);
    release();
    throw error;
  }
}

/**
 * The HS256 secret: MYAPI_TOKEN_KEY, or the key file an embedded database made before the key
 * set existed; undefined for a new installation (it signs with the key set).
 */
export function resolveTokenKey(
  settings: Settings,
  dsn: Dsn,
  log: DatabaseLog,
): string | undefined {
  if (settings.token_key !== undefined) return settings.token_key;
  if (dsn.kind === 'pglite' && dsn.dataDir !== undefined) {
    const found = embeddedTokenKey(dsn.dataDir);
    if (found !== undefined) {
      log.info(
        `accepting the tokens signed by the older key in ${found.path} (see docs/authentication.md)`,
      );
    }
    return found?.key;
  }
  return undefined;
}
