import assert from 'node:assert/strict';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createServerDatabase, TOKEN_KEY } from './support/databases.js';
import {
  freePort,
  runCli,
  startServer as startCli,
  tempDir,
  type Server,
} from './support/process.js';
import { parseExposition, promtoolCheck, valueOf } from './support/prometheus.js';
import { TEST_TIMEOUT_MS } from './support/timeouts.js';

/**
 * The metrics through the command line, as a subprocess: `serve --workers 2` sums both workers'
 * figures in one scrape of the primary, and a metrics port already taken stops `serve`. The
 * in-process suite (events, promtool, a real Prometheus) is test/metrics.test.ts.
 */

const METRICS_TOKEN = 'metrics-token-for-the-cli-tests-0123';

/** A GET on a connection of its own: node:cluster hands each new connection to the next worker. */
function getOnNewConnection(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (response) => {
      response.resume();
      response.on('end', () => {
        resolve(response.statusCode ?? 0);
      });
    }).on('error', reject);
  });
}

describe('metrics of `myapi serve --workers 2`', { timeout: TEST_TIMEOUT_MS * 2 }, () => {
  let database: { dsn: string; drop: () => Promise<void> };
  let server: Server;
  let metricsUrl: string;
  const REQUESTS = 12;

  before(async () => {
    database = await createServerDatabase();
    const cwd = tempDir();
    const metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    const env = {
      MYAPI_DATABASE__DSN: database.dsn,
      MYAPI_TOKEN_KEY: TOKEN_KEY,
      MYAPI_METRICS__PORT: String(metricsPort),
      MYAPI_METRICS__TOKEN: METRICS_TOKEN,
    };
    const migrated = await runCli(['migrate'], cwd, env);
    assert.equal(migrated.exit.code, 0, migrated.proc.show());
    server = await startCli(cwd, env, ['--workers', '2']);
    // Ready means one worker listens; the test needs both.
    await server.waitForOutput(() => listening() === 2, 'both workers listening');
  });

  after(async () => {
    if (server.alive) await server.stop();
    await database.drop();
  });

  it('sums the figures of every worker in one scrape of the metrics port of the primary', async () => {
    for (let i = 0; i < REQUESTS; i++) {
      assert.equal(await getOnNewConnection(`${server.url}/openapi.json`), 200);
    }
    // Both workers served some of them (their pids are on the access lines)...
    await server.waitForOutput(
      () => servedBy().length === REQUESTS,
      `${REQUESTS} access lines of /openapi.json`,
    );
    const pids = new Set(servedBy());
    assert.equal(pids.size, 2, `one worker served every request\n${server.show()}`);
    assert.ok(!pids.has(server.pid), 'the primary served a request');
    // ... and one scrape counts them all.
    const response = await fetch(metricsUrl);
    assert.equal(response.status, 200);
    const text = await response.text();
    const openapi = { route: '/openapi.json', method: 'GET', status_code: '200' };
    const samples = parseExposition(text);
    assert.equal(valueOf(samples, 'myapi_http_request_duration_seconds_count', openapi), REQUESTS);
    // Every worker's pool is in the sum: each holds the connection its start-up check opened.
    assert.ok(valueOf(samples, 'myapi_db_pool_connections', { pool: 'primary' }) >= 2);
    const { code, output } = await promtoolCheck(text);
    assert.equal(code, 0, output);
    // A worker asked on the API's port answers with the whole cluster's figures too.
    const viaWorker = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    assert.equal(viaWorker.status, 200);
    const workerSamples = parseExposition(await viaWorker.text());
    assert.equal(
      valueOf(workerSamples, 'myapi_http_request_duration_seconds_count', openapi),
      REQUESTS,
    );
  });

  /** The complete JSON lines the server wrote so far (a line still being written is left out). */
  function logRecords(): Record<string, unknown>[] {
    return server.stdout
      .split('\n')
      .slice(0, -1)
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  function listening(): number {
    return logRecords().filter((line) => String(line.msg).startsWith('myapi is serving at')).length;
  }

  /** The pids of the workers that answered GET /openapi.json, one per request. */
  function servedBy(): number[] {
    return logRecords()
      .filter((line) => line.msg === 'request completed' && line.url === '/openapi.json')
      .map((line) => Number(line.pid));
  }
});

describe('a metrics port already taken', { timeout: TEST_TIMEOUT_MS }, () => {
  it('stops `myapi serve` with one line naming the setting, before the API listens', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as AddressInfo;
      const apiPort = await freePort();
      const { exit, proc } = await runCli(['serve', '--port', String(apiPort)], tempDir(), {
        MYAPI_METRICS__PORT: String(port),
      });
      assert.equal(exit.code, 1, proc.show());
      assert.match(
        proc.stderr,
        new RegExp(
          `^myapi: error: .*MYAPI_METRICS__PORT: cannot listen on 127\\.0\\.0\\.1:${port} \\(.*EADDRINUSE`,
          'm',
        ),
      );
    } finally {
      taken.close();
    }
  });
});
