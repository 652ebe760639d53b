import { existsSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { socketDirFor, socketPath } from '../src/backend/database/embedded.js';
import {
  delay,
  freePort,
  Proc,
  Server,
  startServer,
  tempDir,
  TEST_TIMEOUT_MS,
} from './support/process.js';

/**
 * A command run beside `myapi serve` on the embedded database goes through the server's socket.
 * It waits for a server that is still starting, and for one whose database is busy, rather than
 * failing on the one-second acquire timeout meant for HTTP requests.
 */

describe('a command beside the embedded server', { concurrency: true }, () => {
  it(
    'run while the server is still starting waits for it, then goes through it',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const cwd = tempDir();
      const dataDir = join(cwd, '.myapi', 'pgdata');
      const socket = socketPath(socketDirFor(dataDir));
      const server = new Server(cwd, await freePort());
      try {
        // The server locks the directory before it creates the database (seconds on a first
        // start). Held there, it shows a command the lock of a server whose socket is not open.
        while (!existsSync(join(dataDir, 'myapi.lock'))) {
          assert.ok(server.alive, server.show());
          await delay(5);
        }
        server.child.kill('SIGSTOP');
        assert.ok(!existsSync(socket), 'the socket was open already: the test proves nothing');
        const command = new Proc(['users', 'list'], cwd, {});
        const waiting = new RegExp(
          `waiting for process ${server.pid} \\(myapi serve\\) to open the embedded`,
        );
        await command.waitForOutput(() => waiting.test(command.stderr), 'the wait for the socket');
        // Let go, the server opens its socket, then migrates and seeds the new database while
        // the command's connection waits its turn behind that work.
        server.child.kill('SIGCONT');
        const exit = await command.finished(TEST_TIMEOUT_MS);
        assert.equal(exit.code, 0, command.show());
        assert.match(command.stdout, /^user_id\temail\t/);
        await server.ready();
      } finally {
        server.child.kill('SIGCONT');
        await server.stop();
      }
    },
  );

  it(
    'run while the server cannot answer waits past the acquire timeout, says so, then goes through',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const cwd = tempDir();
      const server = await startServer(cwd, { MYAPI_DATABASE__ACQUIRE_TIMEOUT_MS: '1000' });
      try {
        // A stopped server stands for one whose database is held by long work: the socket
        // accepts the command's connection, and nothing answers it.
        server.child.kill('SIGSTOP');
        const command = new Proc(['users', 'list'], cwd, {});
        const started = Date.now();
        const busy = new RegExp(
          `waiting for process ${server.pid} \\(myapi serve\\): the embedded database is busy`,
        );
        await command.waitForOutput(() => busy.test(command.stderr), 'the busy notice');
        // Well past the one-second acquire timeout, the command is still waiting.
        await delay(Math.max(0, started + 2500 - Date.now()));
        assert.ok(command.alive, `gave up on a busy server\n${command.show()}`);
        server.child.kill('SIGCONT');
        const exit = await command.finished(TEST_TIMEOUT_MS);
        assert.equal(exit.code, 0, command.show());
        assert.match(command.stdout, /^user_id\temail\t/);
      } finally {
        server.child.kill('SIGCONT');
        await server.stop();
      }
    },
  );
});
