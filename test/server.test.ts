import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEMO_MOVIES } from '../src/data/demo_movies.js';
import { TOKEN_KEY, createServerDatabase } from './support/databases.js';
import {
  createUser,
  freePort,
  login,
  newMovies,
  postToken,
  runCli,
  Server,
  startServer,
  SHUTDOWN_GRACE_MS,
  STOP_TIMEOUT_MS,
  tempDir,
  TEST_TIMEOUT_MS,
  TUTORIAL_MOVIES,
  USER,
  WRONG_PASSWORD,
  type TokenBody,
} from './support/process.js';

/** The processes whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^[0-9]+$/.test(entry))
    .map(Number)
    .filter((candidate) => {
      try {
        const stat = readFileSync(`/proc/${candidate}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false; // it has just ended
      }
    });
}

/**
 * The server as a user starts it (`node dist/cli.js serve` in a directory of its own), driven
 * over a real socket with fetch, and stopped with signals.
 */

describe('myapi serve over a real socket', { concurrency: true }, () => {
  // Servers start in before hooks with a timeout of their own: a slow start fails that hook,
  // and each test has its own timeout instead of a share of one for the whole suite.
  describe('with the embedded database', { concurrency: 1 }, () => {
    let cwd: string;
    let dataDir: string;
    let lockFile: string;
    let keyFile: string;
    let first: Server;
    let firstToken: string;

    before(
      async () => {
        cwd = tempDir();
        dataDir = join(cwd, '.myapi', 'pgdata');
        lockFile = join(dataDir, 'myapi.lock');
        keyFile = join(dataDir, 'myapi-keys.secret');
        first = await startServer(cwd);
        await createUser(cwd);
        firstToken = await login(first.url);
      },
      { timeout: TEST_TIMEOUT_MS },
    );

    it(
      'the tutorial session: serve, create-user while it runs, log in, new movies',
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        assert.ok(first.alive, 'the server died while the CLI used its database');
        const { status, body } = await newMovies(first.url, firstToken);
        assert.equal(status, 200);
        assert.deepEqual(body, TUTORIAL_MOVIES);

        await first.assertLogsClean([
          USER.password,
          firstToken,
          readFileSync(keyFile, 'utf8').trim(),
        ]);
      },
    );

    it(
      "keeps concurrent requests and a CLI command apart on the embedded database's one session",
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        // The server and the CLI reach PGlite's single session through its socket: the queries of
        // concurrent requests and of the command must not be mixed (each answer is checked).
        const expected = (year: number, rating: number) =>
          DEMO_MOVIES.filter((m) => m.released >= year && m.rating >= rating)
            .map((m) => ({ ...m }))
            .sort((a, b) => a.released - b.released || a.movie_id - b.movie_id);
        const headers = { authorization: `Bearer ${firstToken}` };
        const check = async (i: number) => {
          if (i % 2 === 0) {
            const response = await fetch(`${first.url}/movies/${(i % 90) + 1}`, { headers });
            assert.equal(response.status, 200, await response.clone().text());
            assert.equal(((await response.json()) as { movie_id: number }).movie_id, (i % 90) + 1);
            return;
          }
          const [year, rating] = [1950 + (i % 60), (i % 9) + 0.5];
          const response = await fetch(`${first.url}/movies/new?year=${year}&rating=${rating}`, {
            headers,
          });
          assert.equal(response.status, 200, await response.clone().text());
          assert.deepEqual(await response.json(), expected(year, rating));
        };
        let commandDone = false;
        const command = runCli(['users', 'list'], cwd).finally(() => {
          commandDone = true;
        });
        let served = 0;
        await Promise.all(
          Array.from({ length: 8 }, async (_, lane) => {
            for (let i = lane; !commandDone || i < 64; i += 8) {
              await check(i);
              served++;
            }
          }),
        );
        const { exit, proc } = await command;
        assert.equal(exit.code, 0, proc.show());
        assert.match(proc.stdout, new RegExp(USER.email));
        assert.ok(served >= 64 && first.alive, `served ${served}`);
      },
    );

    it(
      '/health answers 200 {"status":"ok"} and /ready 200',
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const health = await fetch(`${first.url}/health`);
        assert.equal(health.status, 200);
        assert.deepEqual(await health.json(), { status: 'ok' });
        const ready = await fetch(`${first.url}/ready`);
        assert.equal(ready.status, 200);
        await ready.arrayBuffer();
      },
    );

    it(
      'a second serve on the same directory exits 1 saying it is in use; the first keeps going',
      { timeout: TEST_TIMEOUT_MS },
      async () => {
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
      },
    );

    it(
      'the signing key (mode 0600) and the data survive SIGTERM and a restart',
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        assert.equal(statSync(keyFile).mode & 0o777, 0o600);
        const exit = await first.stop('SIGTERM');
        assert.equal(exit.code, 0, first.show());
        assert.ok(!existsSync(lockFile), 'the lock outlived the server');
        await first.assertLogsClean([USER.password, firstToken]);

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
        await restarted.assertLogsClean([USER.password, firstToken]);
      },
    );

    it(
      'SIGTERM to the server and its hashing process during logins: every one completes, exit 0 within 10 s',
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        // debug adds an "incoming request" line, which tells when a login is in flight.
        const server = await startServer(cwd, { MYAPI_LOG_LEVEL: 'debug' });
        const tokenRequests = () =>
          server
            .logLines()
            .filter((line) => line.msg === 'incoming request' && line.url === '/token').length;
        // One login first: the hashing process has started and set up its signal handlers.
        const first = await postToken(server.url, USER.email, USER.password);
        assert.equal(first.status, 200, await first.text());
        const hashing = childrenOf(server.pid);
        assert.equal(hashing.length, 1, 'the hashing process runs beside the server');
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
        await server.waitForOutput(
          () => tokenRequests() >= passwords.length + 1,
          'the logins to reach the server',
        );
        // As a supervisor stopping the service signals every process of it (systemd's default).
        const signalled = Date.now();
        server.child.kill('SIGTERM');
        for (const pid of hashing) process.kill(pid, 'SIGTERM');
        const results = await Promise.all(attempts);
        const exit = await server.finished(STOP_TIMEOUT_MS);
        const stoppedAfter = Date.now() - signalled;

        for (const { password, status, body } of results) {
          if (password === USER.password) {
            assert.equal(status, 200, body + server.show());
            assert.equal(typeof (JSON.parse(body) as TokenBody).access_token, 'string');
          } else {
            assert.equal(status, 401, body);
          }
        }
        assert.equal(exit.code, 0, server.show());
        assert.ok(stoppedAfter < SHUTDOWN_GRACE_MS, `stopped after ${stoppedAfter} ms`);
        assert.ok(!existsSync(lockFile), 'the lock outlived the server');
        assert.deepEqual(
          hashing.filter((pid) => existsSync(`/proc/${pid}`)),
          [],
          'the hashing process outlived the server',
        );

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
        await server.assertLogsClean([USER.password, WRONG_PASSWORD, ...tokens]);
      },
    );

    it('SIGINT stops the server with exit code 0', { timeout: TEST_TIMEOUT_MS }, async () => {
      const server = await startServer(cwd);
      const exit = await server.stop('SIGINT');
      assert.equal(exit.code, 0, server.show());
      assert.ok(!existsSync(lockFile), 'the lock outlived the server');
    });
  });

  describe('with a PostgreSQL server database', { concurrency: 1 }, () => {
    let database: { dsn: string; drop: () => Promise<void> };
    let cwd: string;
    let env: Record<string, string>;
    let server: Server;

    before(
      async () => {
        database = await createServerDatabase();
        cwd = tempDir();
        env = { MYAPI_DATABASE__DSN: database.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
        for (const command of ['migrate', 'seed']) {
          const { exit, proc } = await runCli([command], cwd, env);
          assert.equal(exit.code, 0, proc.show());
        }
        server = await startServer(cwd, env);
      },
      { timeout: TEST_TIMEOUT_MS },
    );

    after(async () => {
      await database.drop();
    });

    it(
      'the tutorial session: migrate, seed, serve, create-user, log in, new movies',
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        await createUser(cwd, env);
        const token = await login(server.url);
        const { status, body } = await newMovies(server.url, token);
        assert.equal(status, 200);
        assert.deepEqual(body, TUTORIAL_MOVIES);
        await server.assertLogsClean([USER.password, token, TOKEN_KEY]);
        // The login's hash ran in the server's hashing process, every thread of it niced.
        const [hashing, ...others] = childrenOf(server.pid);
        assert.ok(hashing !== undefined && others.length === 0, 'one child process expected');
        const threads = readdirSync(`/proc/${hashing}/task`).map(Number);
        assert.ok(threads.length > 1, 'the hashing process has its threadpool');
        for (const thread of threads) assert.equal(getPriority(thread), 10, `thread ${thread}`);
      },
    );

    it(
      '/ready turns 503 with a problem body that says nothing internal when the database goes away',
      { timeout: TEST_TIMEOUT_MS },
      async () => {
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
      },
    );
  });
});
