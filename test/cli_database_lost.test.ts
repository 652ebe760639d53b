import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { socketDirFor, socketPath } from '../src/backend/database/embedded.js';
import { TOKEN_KEY } from './support/databases.js';

/**
 * A command whose database dies under it says so in one line and exits 1: no stack trace from
 * pg's Client ("Unhandled 'error' event"). The database is a private PostgreSQL cluster of this
 * test's own (initdb + pg_ctl), stopped with "immediate" as a crash would.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = '/usr/lib/postgresql/15/bin';
const run = promisify(execFile);
/** PostgreSQL refuses to run as root: as root, its programs run as the postgres user. */
const AS_ROOT = process.getuid?.() === 0;

function postgres(program: string, args: string[]) {
  const path = join(BIN, program);
  return AS_ROOT ? run('runuser', ['-u', 'postgres', '--', path, ...args]) : run(path, args);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** A private PostgreSQL cluster in a temporary directory, on a free port of its own. */
class PrivateCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'myapi-pg-'));
  readonly data = join(this.dir, 'data');
  port = 0;

  get dsn(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/myapi`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    if (AS_ROOT) await run('chown', ['postgres:', this.dir]);
    await postgres('initdb', ['-D', this.data, '-U', 'postgres', '-A', 'trust', '--no-sync']);
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    await postgres('pg_ctl', [
      'start',
      '-w',
      '-t',
      '120',
      '-D',
      this.data,
      '-l',
      join(this.dir, 'log'),
      '-o',
      options,
    ]);
    const client = new pg.Client(`postgresql://postgres@127.0.0.1:${this.port}/postgres`);
    await client.connect();
    await client.query('create database myapi');
    await client.end();
  }

  async crash(): Promise<void> {
    await postgres('pg_ctl', ['stop', '-D', this.data, '-m', 'immediate', '-w']);
  }

  async remove(): Promise<void> {
    await postgres('pg_ctl', ['stop', '-D', this.data, '-m', 'immediate']).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const PROGRESS = 'generating movies: ';

/** Besides its progress, the command said one line: the error, with no stack trace. */
function assertOneLine(stderr: string): void {
  const lines = stderr
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith(PROGRESS));
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0] ?? '', /^myapi: error: .*(database|connection|terminat)/i);
  assert.ok(!stderr.includes('    at '), stderr);
}

describe('a command whose PostgreSQL server dies under it', () => {
  const cluster = new PrivateCluster();
  const env = { ...process.env, MYAPI_TOKEN_KEY: TOKEN_KEY };
  before(async () => {
    await cluster.start();
    await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'migrate'], {
      cwd: ROOT,
      env: { ...env, MYAPI_DATABASE__DSN: cluster.dsn },
    });
  });
  after(async () => {
    await cluster.remove();
  });

  it('prints one line and exits 1', { timeout: 180_000 }, async () => {
    const command = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'seed', '--synthetic', '200000'],
      { cwd: ROOT, env: { ...env, MYAPI_DATABASE__DSN: cluster.dsn } },
    );
    let stderr = '';
    command.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => command.on('exit', resolve));
    // Its progress lines show it at work, midway through the rows.
    while (!stderr.includes(PROGRESS) && command.exitCode === null) await sleep(50);
    assert.ok(stderr.includes(PROGRESS), `the command ended before it was stopped: ${stderr}`);
    await cluster.crash();
    const code = await exited;
    assertOneLine(stderr);
    assert.equal(code, 1, stderr);
  });
});

describe("a command whose embedded database's server dies under it", () => {
  const dir = mkdtempSync(join(tmpdir(), 'myapi-embedded-lost-'));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints one line and exits 1', { timeout: 300_000 }, async () => {
    // The command reaches the database through the server's socket, as while a server runs.
    const env = { ...process.env, MYAPI_DATABASE__DSN: `pglite:${join(dir, 'pgdata')}` };
    const cli = (args: string[]) =>
      spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, env });
    const server = cli(['serve', '--port', '0']);
    const serverExited = new Promise((resolve) => server.on('exit', resolve));
    try {
      const socket = socketPath(socketDirFor(join(dir, 'pgdata')));
      while (!existsSync(socket) && server.exitCode === null) await sleep(100);
      const command = cli(['seed', '--synthetic', '200000']);
      let stderr = '';
      command.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => command.on('exit', resolve));
      while (!stderr.includes(PROGRESS) && command.exitCode === null) await sleep(50);
      assert.ok(stderr.includes(PROGRESS), `the command ended before it was stopped: ${stderr}`);
      server.kill('SIGKILL');
      const code = await exited;
      assertOneLine(stderr);
      assert.equal(code, 1, stderr);
    } finally {
      server.kill('SIGKILL');
      await serverExited;
    }
  });
});
