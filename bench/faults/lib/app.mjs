// Setting myapi up for a fault scenario: a database (a fresh one on the private cluster, or an
// embedded PGlite directory), migrated and seeded, an admin user, a running `serve` and a token.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  CLI,
  ROOT,
  freePort,
  getToken,
  myapi,
  onCleanup,
  serverEnv,
  spawnTracked,
  stopProcess,
  tempDir,
  waitReady,
} from '../../lib/common.mjs';
import { createDatabase } from './cluster.mjs';

export const EMAIL = 'faults@example.com';
export const PASSWORD = 'faults-Password-7431';

let counter = 0;

/**
 * A migrated, seeded database with an admin user: on the private cluster (`cluster` given) or
 * embedded (pglite:<temp dir>); `seed: false` leaves the movies table empty. Returns { dsn, env(extra), kind }.
 */
export async function prepareDatabase({ cluster, movies = 2000, seed = true, settings = {} } = {}) {
  let dsn;
  if (cluster) {
    dsn = await createDatabase(cluster, `faults_${process.pid}_${++counter}`);
  } else {
    const dir = tempDir('myapi-faults-pglite-');
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    dsn = `pglite:${path.join(dir, 'db')}`;
  }
  const base = {
    MYAPI_DATABASE__DSN: dsn,
    MYAPI_TOKEN_KEY: randomBytes(48).toString('base64url'),
    MYAPI_LOG_LEVEL: 'warn',
    // Fault scripts log in a few times per run; keep the hashing cheap in wall time.
    MYAPI_PASSWORDS__DUTY_CYCLE: '1',
    ...settings,
  };
  const env = (extra = {}) => serverEnv({ ...base, ...extra });
  myapi(['migrate'], env());
  if (seed) myapi(['seed'], env());
  if (movies > 0) myapi(['seed', '--synthetic', String(movies)], env());
  myapi(
    ['create-user', '--name', 'Faults', '--email', EMAIL, '--password', PASSWORD, '--admin'],
    env(),
  );
  return { dsn, env, kind: cluster ? 'postgresql' : 'embedded' };
}

/** Starts `serve` (optionally --workers N), waits for /ready, logs in. */
export async function serve(db, { logFile, workers, extra = {}, nodeArgs = [], ipc = false } = {}) {
  const server = await startServe({ env: db.env(extra), logFile, workers, nodeArgs, ipc });
  onCleanup(() => stopProcess(server, 5000));
  await waitReady(server, server.spawnedAt, { timeoutMs: 90_000 });
  const token = await getToken(server.baseUrl, EMAIL, PASSWORD, 60_000);
  return { server, token, port: server.port };
}

/**
 * Spawns `node [nodeArgs] dist/cli.js serve` on a free port (child.pid is the server itself),
 * its output appended to logFile; `port` reuses a port (a restart after kill -9).
 */
export async function startServe({ env, logFile, workers, nodeArgs = [], ipc = false, port }) {
  port ??= await freePort();
  const fd = openSync(logFile, 'a');
  const spawnedAt = performance.now();
  const args = [...nodeArgs, CLI, 'serve', '--host', '127.0.0.1', '--port', String(port)];
  if (workers) args.push('--workers', String(workers));
  const child = spawnTracked(process.execPath, args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', fd, fd, ...(ipc ? ['ipc'] : [])],
  });
  closeSync(fd);
  Object.assign(child, { spawnedAt, port, baseUrl: `http://127.0.0.1:${port}` });
  return child;
}

export const auth = (token) => ({ authorization: `Bearer ${token}` });

/** Uniform random integer in [1, max]. */
export const randomId = (max) => 1 + Math.floor(Math.random() * max);
