// SIGTERM under keep-alive load: every request that reached the server gets an answer, no resets.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { databaseKinds } from './support/databases.js';
import { servedDatabase } from './support/served.js';
import {
  delay,
  login,
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

/** A kept-alive connection that stays idle: it holds the drain open for its whole length. */
async function idleKeptAlive(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => {
    socket.once('data', () => {
      resolve();
    });
    socket.write(`GET /health HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`);
  });
  return socket;
}

/** Sends one request on an idle kept-alive socket and reads the answer until the server closes. */
function requestAndRead(socket: Socket, host: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('close', () => {
      resolve(answer);
    });
    socket.write(`GET /health HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  });
}

/** Resolves once a new connection is refused: the server has stopped listening. */
async function refused(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  for (;;) {
    const error = await new Promise<string | undefined>((resolve) => {
      const probe = connect(Number(port), hostname);
      probe.on('connect', () => {
        probe.destroy();
        resolve(undefined);
      });
      probe.on('error', (e: NodeJS.ErrnoException) => {
        resolve(e.code);
      });
    });
    if (error === 'ECONNREFUSED') return;
    await delay(10);
  }
}

const LANES = 8;
/** Longer than the 1 s default: the idle connections below must speak within it on a busy machine. */
const DRAIN = { MYAPI_HTTP__DRAIN_MS: '3000' };
/** Kept-alive connections idle at the signal that send their next request while it drains. */
const IDLE = 4;

/**
 * Keeps LANES keep-alive connections busy (movie reads, and logins on two lanes so some
 * requests are long in flight) until the server has exited; SIGTERM lands in the middle.
 */
async function stopUnderLoad(
  server: Server,
): Promise<{ outcomes: Outcome[]; signalledAt: number; drained: string[] }> {
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
  const idle = await Promise.all(Array.from({ length: IDLE }, () => idleKeptAlive(server.url)));
  const signalledAt = Date.now();
  server.child.kill('SIGTERM');
  // The listener closes as the drain starts (the log is buffered, so it cannot tell when).
  await refused(server.url);
  const drained = await Promise.all(
    idle.map((socket) => requestAndRead(socket, new URL(server.url).hostname)),
  );
  const exit = await server.finished(STOP_TIMEOUT_MS);
  exited = true;
  await Promise.all(lanes);
  agent.destroy();
  assert.equal(exit.code, 0, server.show());
  return { outcomes, signalledAt, drained };
}

function assertNoResets(
  { outcomes, signalledAt, drained }: Awaited<ReturnType<typeof stopUnderLoad>>,
  show: () => string,
): void {
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
  for (const o of outcomes.filter((o) => o.status === 503)) {
    assert.equal(o.connection, 'close');
    assert.match(o.contentType ?? '', /^application\/problem\+json/);
    assert.equal(o.retryAfter, '1');
  }
  // Requests written on kept-alive connections once the drain had started: answered, not reset.
  for (const answer of drained) {
    assert.match(answer, /^HTTP\/1\.1 503 /, `${JSON.stringify(answer)}\n${show()}`);
    assert.match(answer, /\r\nconnection: close\r\n/i);
    assert.match(answer, /\r\nretry-after: 1\r\n/i);
    assert.match(answer, /\r\ncontent-type: application\/problem\+json/i);
    assert.match(answer, /"detail":"The server is shutting down: retry"/);
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
          ({ cwd, env, drop } = await servedDatabase(kind));
        });

        after(async () => {
          await drop();
        });

        it('one process: 0 resets, 503 + Connection: close while draining, exit 0', async () => {
          const server = await startServer(cwd, { ...env, ...DRAIN });
          assertNoResets(await stopUnderLoad(server), () => server.show());
        });

        if (kind === 'postgres') {
          it('--workers 2: 0 resets, exit 0', async () => {
            const server = await startServer(cwd, { ...env, ...DRAIN }, ['--workers', '2']);
            await server.waitForOutput(
              () => server.stdout.split('myapi is serving').length - 1 === 2,
              'two workers',
            );
            assertNoResets(await stopUnderLoad(server), () => server.show());
          });
        }
      });
    }
  },
);

describe('stopping while a connection holds the drain open', { timeout: TEST_TIMEOUT_MS }, () => {
  const slow = { MYAPI_HTTP__DRAIN_MS: '30000' };

  it('a second SIGTERM exits at once with code 1', async () => {
    const server = await startServer(tempDir(), slow);
    const socket = await idleKeptAlive(server.url);
    server.child.kill('SIGTERM');
    await server.waitForOutput(() => server.stdout.includes('SIGTERM received'), 'the first stop');
    const again = Date.now();
    const exit = await server.stop('SIGTERM');
    socket.destroy();
    assert.equal(exit.code, 1, server.show());
    assert.ok(Date.now() - again < 5_000, 'the second signal did not force the exit');
    assert.match(server.stdout, /SIGTERM again: exiting now/);
  });

  it('MYAPI_HTTP__SHUTDOWN_TIMEOUT_MS bounds the stop: exit 1 when it passes', async () => {
    const server = await startServer(tempDir(), {
      ...slow,
      MYAPI_HTTP__SHUTDOWN_TIMEOUT_MS: '1000',
    });
    const socket = await idleKeptAlive(server.url);
    const signalled = Date.now();
    const exit = await server.stop('SIGTERM');
    socket.destroy();
    assert.equal(exit.code, 1, server.show());
    assert.ok(Date.now() - signalled >= 900, 'exited before the timeout');
    assert.match(server.stdout, /shutdown took too long: exiting/);
  });
});
