// Slow clients (slowloris on headers and on bodies) are answered 408 within the configured bounds.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startServer, tempDir, TEST_TIMEOUT_MS, type Server } from './support/process.js';

/** Scaled down from production defaults so the tests take seconds; the mechanism is the same. */
const HEADERS_TIMEOUT_MS = 1_500;
const REQUEST_TIMEOUT_MS = 3_000;
/**
 * Socket inactivity: what bounds a connection that never sends its first byte. Below the headers
 * timeout, as by default: Node 20 stops timing a silent connection once that one has passed.
 */
const CONNECTION_TIMEOUT_MS = 1_000;
/** Room for a loaded 2-core machine: Node checks the timeouts every quarter of the shorter one. */
const SLACK_MS = 4_000;

interface Ending {
  /** What the server wrote before closing (empty when it only closed). */
  answer: string;
  /** From the first byte the client sent to the close. */
  elapsedMs: number;
}

/**
 * Opens a connection, writes `head`, then `drip` one byte at a time every `everyMs` for as long
 * as the socket stays open; resolves when the server closes it.
 */
function slowClient(url: string, head: string, everyMs: number): Promise<Ending> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let answer = '';
    let started = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, elapsedMs: Date.now() - started });
    });
    socket.on('connect', () => {
      started = Date.now();
      if (head !== '') socket.write(head);
      timer = setInterval(() => {
        if (!socket.destroyed) socket.write('a');
      }, everyMs);
    });
    setTimeout(
      () => {
        socket.destroy();
        reject(
          new Error(`the server kept a slow client for ${REQUEST_TIMEOUT_MS + SLACK_MS * 3} ms`),
        );
      },
      REQUEST_TIMEOUT_MS + SLACK_MS * 3,
    );
  });
}

function assert408(ending: Ending, boundMs: number): void {
  assert.match(ending.answer, /^HTTP\/1\.1 408 /, JSON.stringify(ending));
  assert.ok(ending.elapsedMs >= boundMs - 100, `closed after ${ending.elapsedMs} ms: too early`);
  assert.ok(ending.elapsedMs <= boundMs + SLACK_MS, `closed after ${ending.elapsedMs} ms`);
}

describe('slow clients against `myapi serve`', { timeout: TEST_TIMEOUT_MS }, () => {
  let server: Server;

  before(async () => {
    server = await startServer(tempDir(), {
      MYAPI_HTTP__HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      MYAPI_HTTP__REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      MYAPI_HTTP__CONNECTION_TIMEOUT_MS: String(CONNECTION_TIMEOUT_MS),
    });
  });

  after(async () => {
    await server.stop();
  });

  it('headers sent a byte at a time: 408 and closed once the headers timeout passes', async () => {
    const ending = await slowClient(
      server.url,
      'GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ',
      200,
    );
    assert408(ending, HEADERS_TIMEOUT_MS);
  });

  it('a body sent a byte at a time: 408 and closed once the request timeout passes', async () => {
    const ending = await slowClient(
      server.url,
      'POST /token HTTP/1.1\r\nHost: localhost\r\n' +
        'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n',
      // The attack seen in production was a byte every 2 s; scaled like the timeouts.
      400,
    );
    assert408(ending, REQUEST_TIMEOUT_MS);
  });

  it('a connection that never sends a byte is closed once the connection timeout passes', async () => {
    const { hostname, port } = new URL(server.url);
    const socket = connect(Number(port), hostname);
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        resolve();
      });
      setTimeout(
        () => {
          socket.destroy();
          reject(new Error('a silent connection stayed open'));
        },
        CONNECTION_TIMEOUT_MS + SLACK_MS * 2,
      );
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= CONNECTION_TIMEOUT_MS - 100, `closed after ${elapsed} ms: too early`);
    assert.ok(elapsed <= CONNECTION_TIMEOUT_MS + SLACK_MS, `closed after ${elapsed} ms`);
  });

  it('a normal request on the same server still gets its answer', async () => {
    const response = await fetch(`${server.url}/health`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: 'ok' });
  });
});
