// A private, throwaway PostgreSQL cluster for the fault scripts: initdb and pg_ctl from the
// Debian packages in a temporary directory, on a free port of 127.0.0.1, so a script can stop,
// restart and kill it without ever touching the machine's shared server.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, onCleanup, sleep, tempDir } from '../../lib/common.mjs';

/** The newest /usr/lib/postgresql/<version>/bin (15 on Debian 12), or PG_BIN. */
export function pgBin() {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error('no initdb under /usr/lib/postgresql/*/bin: apt-get install postgresql');
  }
  return path.join(root, versions[0], 'bin');
}

function command(cluster, tool, args) {
  const bin = path.join(cluster.bin, tool);
  return process.getuid?.() === 0
    ? ['runuser', ['-u', 'postgres', '--', bin, ...args]]
    : [bin, args];
}

/** Runs a PostgreSQL tool as the postgres user when we are root (initdb refuses root). */
function pgToolSync(cluster, tool, args, { timeoutMs = 120_000 } = {}) {
  const [cmd, argv] = command(cluster, tool, args);
  const result = spawnSync(cmd, argv, { encoding: 'utf8', timeout: timeoutMs });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${tool} ${args.join(' ')}: exit ${result.status}\n${result.stderr}`);
  }
  return result.stdout;
}

/** The same without blocking the event loop (the load generator runs beside it). */
function pgTool(cluster, tool, args, { timeoutMs = 120_000 } = {}) {
  const [cmd, argv] = command(cluster, tool, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${tool} ${args.join(' ')}: exit ${code}\n${stderr}`));
    });
  });
}

/**
 * Creates and starts a cluster; its stop and removal are registered for the end of the script.
 * Returns { dir, port, dsn(db), start(), stop(mode), restart(mode) }.
 */
export async function startCluster({ maxConnections = 100 } = {}) {
  const dir = tempDir('myapi-faults-pg-');
  const data = path.join(dir, 'data');
  const port = await freePort();
  const cluster = { bin: pgBin(), dir, data, port, log: path.join(dir, 'postgres.log') };
  if (process.getuid?.() === 0) spawnSync('chown', ['-R', 'postgres:postgres', dir]);
  pgToolSync(cluster, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '-N']);
  // Listen on loopback only, with the socket in our own directory, not /var/run/postgresql.
  writeFileSync(
    path.join(data, 'postgresql.auto.conf'),
    [
      `listen_addresses = '127.0.0.1'`,
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      `max_connections = ${maxConnections}`,
      `fsync = on`,
      `shared_buffers = '64MB'`,
      '',
    ].join('\n'),
  );
  if (process.getuid?.() === 0)
    spawnSync('chown', ['postgres:postgres', path.join(data, 'postgresql.auto.conf')]);
  cluster.dsn = (db = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${db}`;
  cluster.start = () =>
    pgTool(cluster, 'pg_ctl', ['-D', data, '-l', cluster.log, '-w', '-t', '60', 'start']);
  cluster.stop = (mode = 'fast') =>
    pgTool(cluster, 'pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
  cluster.restart = (mode = 'fast') =>
    pgTool(cluster, 'pg_ctl', [
      '-D',
      data,
      '-m',
      mode,
      '-l',
      cluster.log,
      '-w',
      '-t',
      '60',
      'restart',
    ]);
  await cluster.start();
  onCleanup(async () => {
    if (existsSync(path.join(data, 'postmaster.pid'))) {
      await cluster.stop('immediate').catch(() => {});
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return cluster;
}

/** Creates a database on the cluster (a fresh one per scenario). */
export async function createDatabase(cluster, name) {
  await withClient(cluster.dsn('postgres'), (c) => c.query(`CREATE DATABASE "${name}"`));
  return cluster.dsn(name);
}

/** Runs fn(client) on a fresh pg.Client and ends it. */
export async function withClient(dsn, fn) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: dsn, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Polls until the cluster accepts a query; returns when (performance.now()) it first did. */
export async function waitUp(cluster, timeoutMs = 60_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      await withClient(cluster.dsn('postgres'), (c) => c.query('select 1'));
      return performance.now();
    } catch {
      await sleep(20);
    }
  }
  throw new Error(`PostgreSQL on port ${cluster.port} did not come back in ${timeoutMs} ms`);
}

/**
 * Polls the cluster with a fresh connection every intervalMs while a fault happens: back() is
 * the first moment (performance.now()) it answered again after it first failed to.
 */
export function probe(cluster, intervalMs = 50) {
  let stopped = false;
  let downAt = null;
  let upAt = null;
  const done = (async () => {
    while (!stopped) {
      const ok = await withClient(cluster.dsn('postgres'), (c) => c.query('select 1')).then(
        () => true,
        () => false,
      );
      const now = performance.now();
      if (!ok && downAt === null) downAt = now;
      if (ok && downAt !== null && upAt === null) upAt = now;
      await sleep(intervalMs);
    }
  })();
  return {
    /** Resolves the time it came back, waiting up to timeoutMs for it. */
    async back(timeoutMs = 60_000) {
      const deadline = performance.now() + timeoutMs;
      while (upAt === null && performance.now() < deadline) await sleep(20);
      return upAt;
    },
    get downAt() {
      return downAt;
    },
    async stop() {
      stopped = true;
      await done;
    },
  };
}
