import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TOKEN_KEY, createServerDatabase } from './support/databases.js';

/**
 * The server as a user starts it (`node dist/cli.js serve` in a directory of its own), driven
 * over a real socket with fetch, and stopped with signals.
 */

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const USER = { name: 'test user', email: 'test_user@myapi.com', password: 'qwerty123' };
const WRONG_PASSWORD = 'not-the-password-42';
const TUTORIAL_MOVIES = [
  { movie_id: 1, title: 'The Shawshank Redemption', released: 1994, rating: 9.2 },
  { movie_id: 3, title: 'The Dark Knight', released: 2008, rating: 9 },
];
const STOP_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = 60_000;

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^myapi_/i.test(name)) env[name] = value;
  }
  return { ...env, ...extra };
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => {
    probe.close(() => {
      resolve();
    });
  });
  return port;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const running = new Set<ChildProcessWithoutNullStreams>();

/** A `myapi` subprocess whose output is kept for the assertions. */
class Proc {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<Exit>;
  stdout = '';
  stderr = '';
  private readonly listeners = new Set<() => void>();

  constructor(args: string[], cwd: string, env: Record<string, string>, input = '') {
    this.child = spawn(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(env) });
    running.add(this.child);
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      for (const listener of this.listeners) listener();
    });
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        running.delete(this.child);
        for (const listener of this.listeners) listener();
        resolve({ code, signal });
      });
    });
    this.child.stdin.on('error', () => undefined);
    this.child.stdin.end(input);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  show(): string {
    return `--- stdout\n${this.stdout}--- stderr\n${this.stderr}`;
  }

  /** Complete stdout lines parsed as JSON; a line that is not JSON fails the test. */
  logLines(): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          assert.fail(`stdout line is not JSON: ${line}`);
        }
      });
  }

  /** Resolves when stdout satisfies `done` (checked on each chunk), fails on exit or timeout. */
  waitForStdout(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (error?: Error) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        if (done()) finish();
        else if (!this.alive) finish(new Error(`exited while waiting for ${what}\n${this.show()}`));
      };
      const timer = setTimeout(() => {
        finish(new Error(`timed out waiting for ${what}\n${this.show()}`));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  async finished(timeoutMs = 30_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`did not exit within ${timeoutMs} ms\n${this.show()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal and waits for the exit, which must come within the shutdown grace. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    this.child.kill(signal);
    return this.finished(STOP_TIMEOUT_MS);
  }
}

/** `node dist/cli.js ...` to completion. */
async function runCli(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ exit: Exit; proc: Proc }> {
  const proc = new Proc(args, cwd, env);
  return { exit: await proc.finished(), proc };
}

class Server extends Proc {
  readonly url: string;

  constructor(cwd: string, port: number, env: Record<string, string> = {}) {
    super(['serve'], cwd, { ...env, MYAPI_PORT: String(port) });
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Polls GET /ready until 200. */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.alive) assert.fail(`the server exited before it was ready\n${this.show()}`);
      try {
        const response = await fetch(`${this.url}/ready`);
        await response.arrayBuffer();
        if (response.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) assert.fail(`the server was not ready in time\n${this.show()}`);
      await delay(100);
    }
  }

  /** Asserts that no log line carries one of the secrets. */
  assertLogsClean(secrets: readonly string[]): void {
    const records = this.logLines();
    assert.ok(records.length > 0, 'the server logged nothing on stdout');
    for (const secret of [...secrets, 'Bearer ey']) {
      assert.ok(secret !== '');
      assert.ok(!this.stdout.includes(secret), `a log line contains the secret ${secret}`);
    }
  }
}

async function startServer(cwd: string, env: Record<string, string> = {}): Promise<Server> {
  const server = new Server(cwd, await freePort(), env);
  await server.ready();
  return server;
}

interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
}

function postToken(url: string, username: string, password: string): Promise<Response> {
  return fetch(`${url}/token`, {
    method: 'POST',
    body: new URLSearchParams({ username, password }),
  });
}

async function login(url: string): Promise<string> {
  const response = await postToken(url, USER.email, USER.password);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.equal(response.headers.get('cache-control'), 'no-store');
  const body = JSON.parse(text) as TokenBody;
  assert.equal(typeof body.access_token, 'string');
  assert.ok(body.access_token.length > 20);
  assert.equal(body.token_type, 'bearer');
  assert.equal(typeof body.expires_in, 'number');
  assert.ok(body.expires_in > 0);
  return body.access_token;
}

async function newMovies(url: string, token: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${url}/movies/new?year=1990&rating=9`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: await response.json() };
}

async function createUser(cwd: string, env: Record<string, string> = {}): Promise<void> {
  const { exit, proc } = await runCli(
    ['create-user', '--name', USER.name, '--email', USER.email, '--password', USER.password],
    cwd,
    env,
  );
  assert.equal(exit.code, 0, proc.show());
}

const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'myapi-serve-'));
  tempDirs.push(dir);
  return dir;
}

after(() => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('myapi serve over a real socket', { concurrency: true }, () => {
  describe('with the embedded database', { concurrency: 1, timeout: TEST_TIMEOUT_MS }, () => {
    let cwd: string;
    let dataDir: string;
    let lockFile: string;
    let keyFile: string;
    let first: Server;
    let firstToken: string;

    before(() => {
      cwd = tempDir();
      dataDir = join(cwd, '.myapi', 'pgdata');
      lockFile = join(dataDir, 'myapi.lock');
      keyFile = join(dataDir, 'myapi-token.key');
    });

    it('the tutorial session: serve, create-user while it runs, log in, new movies', async () => {
      first = await startServer(cwd);
      await createUser(cwd);
      assert.ok(first.alive, 'the server died while the CLI used its database');

      firstToken = await login(first.url);
      const { status, body } = await newMovies(first.url, firstToken);
      assert.equal(status, 200);
      assert.deepEqual(body, TUTORIAL_MOVIES);

      first.assertLogsClean([USER.password, firstToken, readFileSync(keyFile, 'utf8').trim()]);
    });

    it('/health answers 200 {"status":"ok"} and /ready 200', async () => {
      const health = await fetch(`${first.url}/health`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
      const ready = await fetch(`${first.url}/ready`);
      assert.equal(ready.status, 200);
      await ready.arrayBuffer();
    });

    it('a second serve on the same directory exits 1 saying it is in use; the first keeps going', async () => {
      const second = new Server(cwd, await freePort());
      const exit = await second.finished();
      assert.equal(exit.code, 1, second.show());
      assert.ok(!second.stderr.includes('    at '), second.show());
      const errorLines = second.stderr.split('\n').filter((line) => line.trim() !== '');
      assert.equal(errorLines.length, 1, second.show());
      assert.match(errorLines[0] ?? '', new RegExp(`in use by process ${first.pid}\\b`));

      assert.ok(first.alive);
      const ready = await fetch(`${first.url}/ready`);
      assert.equal(ready.status, 200);
      await ready.arrayBuffer();
      const { status, body } = await newMovies(first.url, firstToken);
      assert.equal(status, 200);
      assert.deepEqual(body, TUTORIAL_MOVIES);
      assert.ok(existsSync(lockFile), 'the second serve removed the lock of the first');
    });

    it('the signing key (mode 0600) and the data survive SIGTERM and a restart', async () => {
      assert.equal(statSync(keyFile).mode & 0o777, 0o600);
      const exit = await first.stop('SIGTERM');
      assert.equal(exit.code, 0, first.show());
      assert.ok(!existsSync(lockFile), 'the lock outlived the server');
      first.assertLogsClean([USER.password, firstToken]);

      const restarted = await startServer(cwd);
      try {
        const old = await newMovies(restarted.url, firstToken);
        assert.equal(old.status, 200, 'a token from the first run was refused after a restart');
        assert.deepEqual(old.body, TUTORIAL_MOVIES);
        const token = await login(restarted.url);
        const fresh = await newMovies(restarted.url, token);
        assert.deepEqual(fresh.body, TUTORIAL_MOVIES);
        assert.equal(statSync(keyFile).mode & 0o777, 0o600);
      } finally {
        const stopped = await restarted.stop('SIGTERM');
        assert.equal(stopped.code, 0, restarted.show());
      }
      restarted.assertLogsClean([USER.password, firstToken]);
    });

    it('SIGTERM during logins: every one completes, exit 0 within 10 s, lock removed', async () => {
      // debug adds an "incoming request" line, which tells when a login is in flight.
      const server = await startServer(cwd, { MYAPI_LOG_LEVEL: 'debug' });
      const tokenRequests = () =>
        server.logLines().filter((line) => line.msg === 'incoming request' && line.url === '/token')
          .length;
      const passwords = [
        USER.password,
        WRONG_PASSWORD,
        USER.password,
        USER.password,
        WRONG_PASSWORD,
        USER.password,
        USER.password,
        WRONG_PASSWORD,
      ];
      const attempts = passwords.map(async (password) => {
        try {
          const response = await postToken(server.url, USER.email, password);
          return { password, status: response.status, body: await response.text() };
        } catch (error) {
          return { password, status: 0, body: String(error) };
        }
      });
      // Every login has reached its handler (and passed Fastify's "closing" check): in flight.
      await server.waitForStdout(
        () => tokenRequests() >= passwords.length,
        'the logins to reach the server',
      );
      const signalled = Date.now();
      server.child.kill('SIGTERM');
      const results = await Promise.all(attempts);
      const exit = await server.finished(STOP_TIMEOUT_MS);
      const stoppedAfter = Date.now() - signalled;

      for (const { password, status, body } of results) {
        if (password === USER.password) {
          assert.equal(status, 200, body);
          assert.equal(typeof (JSON.parse(body) as TokenBody).access_token, 'string');
        } else {
          assert.equal(status, 401, body);
        }
      }
      assert.equal(exit.code, 0, server.show());
      assert.ok(stoppedAfter < STOP_TIMEOUT_MS, `stopped after ${stoppedAfter} ms`);
      assert.ok(!existsSync(lockFile), 'the lock outlived the server');

      const records = server.logLines();
      const signalAt = records.findIndex((line) => String(line.msg).startsWith('SIGTERM'));
      const lastCompletedAt = records.findLastIndex((line) => line.msg === 'request completed');
      assert.ok(signalAt >= 0, server.show());
      assert.ok(
        lastCompletedAt > signalAt,
        'no login was still in flight when SIGTERM arrived: the test proved nothing',
      );
      const tokens = results.flatMap(({ status, body }) =>
        status === 200 ? [(JSON.parse(body) as TokenBody).access_token] : [],
      );
      server.assertLogsClean([USER.password, WRONG_PASSWORD, ...tokens]);
    });

    it('SIGINT stops the server with exit code 0', async () => {
      const server = await startServer(cwd);
      const exit = await server.stop('SIGINT');
      assert.equal(exit.code, 0, server.show());
      assert.ok(!existsSync(lockFile), 'the lock outlived the server');
    });
  });

  describe(
    'with a PostgreSQL server database',
    { concurrency: 1, timeout: TEST_TIMEOUT_MS },
    () => {
      let database: { dsn: string; drop: () => Promise<void> };
      let cwd: string;
      let env: Record<string, string>;
      let server: Server;

      before(async () => {
        database = await createServerDatabase();
        cwd = tempDir();
        env = { MYAPI_DATABASE__DSN: database.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
      });

      after(async () => {
        await database.drop();
      });

      it('the tutorial session: migrate, seed, serve, create-user, log in, new movies', async () => {
        for (const command of ['migrate', 'seed']) {
          const { exit, proc } = await runCli([command], cwd, env);
          assert.equal(exit.code, 0, proc.show());
        }
        server = await startServer(cwd, env);
        await createUser(cwd, env);
        const token = await login(server.url);
        const { status, body } = await newMovies(server.url, token);
        assert.equal(status, 200);
        assert.deepEqual(body, TUTORIAL_MOVIES);
        server.assertLogsClean([USER.password, token, TOKEN_KEY]);
      });

      it('/ready turns 503 with a problem body that says nothing internal when the database goes away', async () => {
        await database.drop();
        const response = await fetch(`${server.url}/ready`);
        const text = await response.text();
        assert.equal(response.status, 503, text);
        assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
        const body = JSON.parse(text) as { status?: unknown; detail?: unknown };
        assert.equal(body.status, 503);
        assert.equal(typeof body.detail, 'string');
        assert.ok(String(body.detail).length > 0);
        for (const internal of [
          /ECONNREFUSED/i,
          /\bat /,
          /select/i,
          /params/i,
          /does not exist/i,
          /myapi_test_/,
          /postgres(ql)?:\/\//i,
          /terminat/i,
        ]) {
          assert.doesNotMatch(text, internal);
        }

        const health = await fetch(`${server.url}/health`);
        assert.equal(health.status, 200, 'liveness must not depend on the database');
        await health.arrayBuffer();

        const exit = await server.stop('SIGTERM');
        assert.equal(exit.code, 0, server.show());
      });
    },
  );
});
