import { createHash, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Files myapi keeps beside the embedded PGlite data. PGlite takes no lock on its directory and can
 * serve only one process, so the process that opens it writes a lock file naming itself and, when
 * it is a server, the Unix socket through which other processes (the CLI) reach the same database.
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

/** The signing key of an embedded database: made once, kept with the data, readable by its owner only. */
export function embeddedTokenKey(dataDir: string): { key: string; created: boolean; path: string } {
  const path = join(dataDir, KEY_FILE);
  try {
    return { key: readFileSync(path, 'utf8').trim(), created: false, path };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(48).toString('base64url');
  writeFileSync(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
  return { key, created: true, path };
}
