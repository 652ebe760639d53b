import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TOKEN_KEY, createServerDatabase } from './support/databases.js';
import {
  createUser,
  login,
  newMovies,
  runCli,
  scaled,
  startServer,
  tempDir,
  TEST_TIMEOUT_MS,
  TUTORIAL_MOVIES,
  type Server,
} from './support/process.js';

/** Worker pids that announced they are serving, in order. */
function servingPids(server: Server): number[] {
  return server
    .logLines()
    .filter((line) => String(line.msg).startsWith('myapi is serving'))
    .map((line) => Number(line.pid));
}

// Each hook and test has its own timeout: a slow start fails that one, not the whole suite.
describe('myapi serve --workers', () => {
  let env: Record<string, string>;
  let drop: () => Promise<void>;
  let cwd: string;
  before(
    async () => {
      const database = await createServerDatabase();
      drop = database.drop;
      env = { MYAPI_DATABASE__DSN: database.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
      cwd = tempDir();
      for (const args of [['migrate'], ['seed']]) {
        const { exit, proc } = await runCli(args, cwd, env);
        assert.equal(exit.code, 0, proc.show());
      }
      await createUser(cwd, env);
    },
    { timeout: TEST_TIMEOUT_MS },
  );
  after(async () => {
    await drop();
  });

  it(
    'serves the same API from two processes, restarts a crashed one, and stops cleanly',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const server = await startServer(cwd, env, ['--workers', '2']);
      try {
        await server.waitForOutput(() => servingPids(server).length === 2, 'two workers');
        const [first, second] = servingPids(server);
        assert.ok(first !== undefined && second !== undefined && first !== second);
        assert.ok(first !== server.pid && second !== server.pid, 'workers are not the primary');

        const token = await login(server.url);
        // The primary hands out connections round-robin; parallel requests open several.
        const results = await Promise.all(
          Array.from({ length: 16 }, () => newMovies(server.url, token)),
        );
        for (const result of results) assert.deepEqual(result.body, TUTORIAL_MOVIES);
        const servedBy = () =>
          new Set(
            server
              .logLines()
              .filter((line) => line.msg === 'request completed')
              .map((line) => Number(line.pid)),
          );
        await server.waitForOutput(() => servedBy().size === 2, 'requests served by both workers');
        assert.deepEqual([...servedBy()].sort(), [first, second].sort());

        process.kill(first, 'SIGKILL');
        await server.waitForOutput(() => servingPids(server).length === 3, 'a replacement worker');
        assert.ok(
          server
            .logLines()
            .some((line) => line.msg === 'worker died: restarting it' && line.worker === first),
        );
        for (let i = 0; i < 5; i++) {
          assert.deepEqual((await newMovies(server.url, token)).body, TUTORIAL_MOVIES);
        }
      } finally {
        const exit = await server.stop('SIGTERM');
        assert.equal(exit.code, 0, server.show());
      }
      for (const pid of servingPids(server)) {
        assert.throws(() => process.kill(pid, 0), 'a worker outlived the primary');
      }
    },
  );

  for (const [signal, sender] of [
    ['SIGINT', 'Ctrl-C'],
    ['SIGTERM', 'systemd, a supervisor'],
  ] as const) {
    it(
      `passes ${signal} to the whole group (${sender}) through one graceful stop, exit 0`,
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const server = await startServer(cwd, env, ['--workers', '2']);
        await server.waitForOutput(() => servingPids(server).length === 2, 'two workers');
        for (const pid of [server.pid, ...servingPids(server)]) process.kill(pid, signal);
        const exit = await server.finished(scaled(15_000));
        assert.equal(exit.code, 0, server.show());
        assert.ok(!server.stdout.includes('again: exiting now'), server.show());
      },
    );
  }

  it(
    'refuses workers on the embedded database with one clear line',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { exit, proc } = await runCli(['serve', '--workers', '2'], tempDir(), {});
      assert.equal(exit.code, 1);
      assert.match(proc.stderr, /^myapi: error: --workers needs a PostgreSQL server/);
      assert.equal(proc.stderr.trim().split('\n').length, 1, proc.show());
    },
  );

  it('refuses a bad --workers value', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { exit, proc } = await runCli(['serve', '--workers', 'many'], cwd, env);
    assert.equal(exit.code, 1);
    assert.match(proc.stderr, /--workers must be a number from 1 to 256 or "auto"/);
  });
});
