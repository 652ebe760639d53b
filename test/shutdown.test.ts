// SIGTERM under keep-alive load: every request that reached the server gets an answer, no resets.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { TOKEN_KEY, createServerDatabase, databaseKinds } from './support/databases.js';
import {
  createUser,
  delay,
  login,
  runCli,
  startServer,
  STOP_TIMEOUT_MS,
  tempDir,
  TEST_TIMEOUT_MS,
  USER,
  type Server,
} from './support/process.js';

interface Outcome {
  /** When the request's last byte was handed to the socket. */
  writtenAt: number;
  status?: number;
  connection?: string;
  contentType?: string;
  retryAfter?: string;
  error?: string;
}

/** One request on a keep-alive agent; never throws, records what happened. */
function send(
  agent: Agent,
  url: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { writtenAt: Number.POSITIVE_INFINITY };
    const req = request(
      `${url}${path}`,
      { agent, method: body === undefined ? 'GET' : 'POST', headers },
      (res) => {
        outcome.status = res.statusCode;
        outcome.connection = res.headers.connection;
        outcome.contentType = res.headers['content-type'];
        outcome.retryAfter = res.headers['retry-after'];
        res.resume();
        res.on('end', () => {
          resolve(outcome);
        });
        res.on('error', (error: NodeJS.ErrnoException) => {
          resolve({ ...outcome, error: error.code ?? error.message });
        });
      },
    );
    req.on('finish', () => {
      outcome.writtenAt = Date.now();
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      resolve({ ...outcome, error: error.code ?? error.message });
    });
    req.end(body);
  });
}

const LANES = 8;

/**
 * Keeps LANES keep-alive connections busy (movie reads, and logins on two lanes so some
 * requests are long in flight) until the server has exited; SIGTERM lands in the middle.
 */
async function stopUnderLoad(
  server: Server,
): Promise<{ outcomes: Outcome[]; signalledAt: number }> {
  const token = await login(server.url);
  const agent = new Agent({ keepAlive: true, maxSockets: LANES });
  const outcomes: Outcome[] = [];
  let exited = false;
  const lanes = Array.from({ length: LANES }, async (_, lane) => {
    while (!exited) {
      const outcome =
        lane < 2
          ? await send(
              agent,
              server.url,
              '/token',
              { 'content-type': 'application/x-www-form-urlencoded' },
              new URLSearchParams({ username: USER.email, password: USER.password }).toString(),
            )
          : await send(agent, server.url, `/movies/${(outcomes.length % 90) + 1}`, {
              authorization: `Bearer ${token}`,
            });
      outcomes.push(outcome);
      // Some think time, different per lane, so that at the signal some connections are idle
      // between requests (the ones a server resets when it closes idle sockets at once). After
      // the listener is gone a new connection is refused, which is no reset.
      await delay(outcome.error === 'ECONNREFUSED' ? 20 : (lane * 5) % 40);
    }
  });
  // Let every lane's connection be established and reused a few times.
  while (outcomes.filter((o) => o.status === 200).length < 4 * LANES) await delay(20);
  const signalledAt = Date.now();
  server.child.kill('SIGTERM');
  const exit = await server.finished(STOP_TIMEOUT_MS);
  exited = true;
  await Promise.all(lanes);
  agent.destroy();
  assert.equal(exit.code, 0, server.show());
  return { outcomes, signalledAt };
}

function assertNoResets(outcomes: Outcome[], signalledAt: number, show: () => string): void {
  const resets = outcomes.filter((o) => o.error !== undefined && o.error !== 'ECONNREFUSED');
  const summary = JSON.stringify(
    outcomes.reduce<Record<string, number>>((counts, o) => {
      const key = o.error ?? String(o.status);
      counts[key] = (counts[key] ?? 0) + 1;
      return counts;
    }, {}),
  );
  assert.equal(resets.length, 0, `resets: ${resets.length}, outcomes: ${summary}\n${show()}`);
  for (const o of outcomes) {
    if (o.status !== undefined) assert.ok([200, 503].includes(o.status), summary);
  }
  const drained = outcomes.filter((o) => o.status === 503);
  assert.ok(drained.length > 0, `no request met the drain: the test proved nothing ${summary}`);
  for (const o of drained) {
    assert.equal(o.connection, 'close');
    assert.match(o.contentType ?? '', /^application\/problem\+json/);
    assert.equal(o.retryAfter, '1');
  }
  const answeredAfterSignal = outcomes.filter((o) => o.status === 200 && o.writtenAt < signalledAt);
  assert.ok(answeredAfterSignal.length > 0, summary);
}

describe(
  'SIGTERM while keep-alive clients send continuously',
  { timeout: TEST_TIMEOUT_MS * 2 },
  () => {
    for (const kind of databaseKinds()) {
      describe(kind, { timeout: TEST_TIMEOUT_MS * 2 }, () => {
        let env: Record<string, string> = {};
        let cwd: string;
        let drop: () => Promise<void> = () => Promise.resolve();

        before(async () => {
          cwd = tempDir();
          if (kind === 'postgres') {
            const database = await createServerDatabase();
            drop = database.drop;
            env = { MYAPI_DATABASE__DSN: database.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
            for (const command of ['migrate', 'seed']) {
              const { exit, proc } = await runCli([command], cwd, env);
              assert.equal(exit.code, 0, proc.show());
            }
          } else {
            // The first start creates and seeds the embedded database; the CLI then adds the user.
            const first = await startServer(cwd);
            assert.equal((await first.stop()).code, 0, first.show());
          }
          await createUser(cwd, env);
        });

        after(async () => {
          await drop();
        });

        it('one process: 0 resets, 503 + Connection: close while draining, exit 0', async () => {
          const server = await startServer(cwd, env);
          const { outcomes, signalledAt } = await stopUnderLoad(server);
          assertNoResets(outcomes, signalledAt, () => server.show());
        });

        if (kind === 'postgres') {
          it('--workers 2: 0 resets, exit 0', async () => {
            const server = await startServer(cwd, env, ['--workers', '2']);
            await server.waitForStdout(
              () => server.stdout.split('myapi is serving').length - 1 === 2,
              'two workers',
            );
            const { outcomes, signalledAt } = await stopUnderLoad(server);
            assertNoResets(outcomes, signalledAt, () => server.show());
          });
        }
      });
    }
  },
);
