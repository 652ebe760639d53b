import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadSettings, type Settings } from '../src/backend/config.js';
import { migrate, openDatabase } from '../src/backend/database.js';
import { createLogger } from '../src/backend/logging.js';
import { startServer, type RunningServer } from '../src/server.js';
import { accountOptions, createServices } from '../src/services/index.js';
import {
  createServerDatabase,
  describeEachDatabase,
  LogCapture,
  temporaryEmbedded,
  TOKEN_KEY,
  type DatabaseKind,
} from './support/databases.js';
import { USER } from './support/http.js';
import {
  parseExposition,
  PrometheusServer,
  promtoolCheck,
  valueOf,
  type Sample,
} from './support/prometheus.js';
import { TEST_TIMEOUT_MS } from './support/timeouts.js';

/**
 * The server's metrics through its real entry point (startServer, sockets): events the test
 * causes show in a scrape of the metrics port, promtool accepts the text, and a Prometheus
 * server scraping that port answers a query with a value the test caused. Through the command
 * line (`serve --workers 2`, a port already taken): test/metrics_cli.test.ts.
 */

const METRICS_TOKEN = 'metrics-token-for-the-tests-0123';
const WRONG_PASSWORD = 'not-the-password-42';

/** A migrated database of `kind` and the server's settings on it (metrics on random ports). */
async function serverSettings(
  kind: DatabaseKind,
): Promise<{ settings: Settings; drop(): Promise<void> }> {
  const metricsEnv = {
    MYAPI_METRICS__PORT: '0',
    MYAPI_METRICS__TOKEN: METRICS_TOKEN,
    // One hash at a time and none waiting: logins at once are refused (503), and counted.
    MYAPI_PASSWORDS__CONCURRENCY: '1',
    MYAPI_PASSWORDS__MAX_QUEUED: '0',
    MYAPI_PASSWORDS__DUTY_CYCLE: '1',
  };
  if (kind === 'pglite') {
    const embedded = temporaryEmbedded('myapi-metrics-');
    const { settings } = loadSettings({
      env: { MYAPI_DATABASE__DSN: embedded.settings.database.dsn, MYAPI_PORT: '0', ...metricsEnv },
      cwd: '/nonexistent',
    });
    return {
      settings,
      drop: async () => {
        embedded.remove();
      },
    };
  }
  const server = await createServerDatabase();
  const { settings } = loadSettings({
    env: {
      MYAPI_DATABASE__DSN: server.dsn,
      MYAPI_TOKEN_KEY: TOKEN_KEY,
      MYAPI_PORT: '0',
      ...metricsEnv,
    },
    cwd: '/nonexistent',
  });
  const database = await openDatabase(settings, { role: 'tool' });
  await migrate(database.db);
  await database.close();
  return { settings, drop: server.drop };
}

describeEachDatabase('metrics', { timeout: TEST_TIMEOUT_MS * 2, concurrency: 1 }, (kind) => {
  let running: RunningServer;
  let drop: () => Promise<void>;
  let metricsUrl: string;
  const logs = new LogCapture();

  const scrapeText = async (): Promise<string> => {
    const response = await fetch(metricsUrl);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return response.text();
  };
  const scrape = async (): Promise<Sample[]> => parseExposition(await scrapeText());
  const token = (fields: Record<string, string>) =>
    fetch(`${running.url}/token`, { method: 'POST', body: new URLSearchParams(fields) });

  before(async () => {
    const made = await serverSettings(kind);
    drop = () => made.drop();
    running = await startServer(made.settings, createLogger('warn', logs));
    assert.ok(running.metricsUrl !== undefined);
    metricsUrl = running.metricsUrl;
    assert.match(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const services = createServices(running.database, { accounts: accountOptions(made.settings) });
    await services.users.createUser(USER);
    if (await services.movies.isEmpty()) await services.movies.seedDemo();
  });

  after(async () => {
    await running.close();
    await drop();
  });

  it('counts logins by outcome, throttle refusals, reuse, revocations and /movies/new', async () => {
    const before = await scrape();
    const ok = await token({ username: USER.email, password: USER.password });
    assert.equal(ok.status, 200);
    const tokens = (await ok.json()) as { access_token: string; refresh_token: string };
    const authorization = `Bearer ${tokens.access_token}`;
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${running.url}/movies/new?year=2000&rating=8`, {
        headers: { authorization },
      });
      assert.equal(response.status, 200);
      await response.arrayBuffer();
    }
    // Wrong passwords until the throttle refuses one (5 free failures per account and address).
    let failures = 0;
    for (;;) {
      const response = await token({ username: USER.email, password: WRONG_PASSWORD });
      await response.arrayBuffer();
      if (response.status === 429) break;
      assert.equal(response.status, 401);
      failures++;
      assert.ok(failures <= 10, 'the throttle never refused');
    }
    // A refresh token presented twice: the second is a reuse, which revokes the login.
    const refresh = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token };
    assert.equal((await token(refresh)).status, 200);
    assert.equal((await token(refresh)).status, 400);

    const nowhere = await fetch(`${running.url}/no/such/route/42`);
    assert.equal(nowhere.status, 404);
    await nowhere.arrayBuffer();

    const now = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      valueOf(now, name, labels) - valueOf(before, name, labels);
    assert.equal(delta('myapi_logins_total', { outcome: 'success' }), 1);
    assert.equal(delta('myapi_logins_total', { outcome: 'invalid_credentials' }), failures);
    assert.equal(delta('myapi_logins_total', { outcome: 'throttled' }), 1);
    assert.equal(delta('myapi_login_throttle_refusals_total'), 1);
    assert.equal(delta('myapi_refresh_token_reuse_total'), 1);
    assert.equal(delta('myapi_session_revocations_total', { reason: 'refresh token reused' }), 1);
    const newMovies = { route: '/movies/new', method: 'GET', status_code: '200' };
    assert.equal(delta('myapi_http_request_duration_seconds_count', newMovies), 2);
    assert.equal(
      delta('myapi_http_request_duration_seconds_bucket', { ...newMovies, le: '+Inf' }),
      2,
    );
    assert.ok(delta('myapi_http_request_duration_seconds_sum', newMovies) > 0);
    const token401 = { route: '/token', method: 'POST', status_code: '401' };
    assert.equal(delta('myapi_http_request_duration_seconds_count', token401), failures);
    const unmatched = { route: 'unmatched', method: 'GET', status_code: '404' };
    assert.equal(delta('myapi_http_request_duration_seconds_count', unmatched), 1);
    // The metrics port is not the API's: a scrape is never a request in flight.
    assert.equal(valueOf(now, 'myapi_http_requests_in_flight'), 0);
    // The success, the failures and the dummy hash each waited for a slot once.
    assert.ok(delta('myapi_password_hash_wait_seconds_count') >= failures + 1);
    assert.equal(valueOf(now, 'myapi_password_hash_queue_depth'), 0);
    assert.ok(
      delta('myapi_db_query_duration_seconds_count', { pool: 'primary', operation: 'select' }) > 0,
    );
    assert.ok(valueOf(now, 'myapi_db_pool_connections', { pool: 'primary' }) >= 1);
    assert.equal(valueOf(now, 'myapi_db_pool_waiting_requests', { pool: 'primary' }), 0);
    assert.ok(valueOf(now, 'process_cpu_seconds_total') > 0);
    assert.ok(valueOf(now, 'nodejs_eventloop_lag_p99_seconds') >= 0);
    assert.ok(now.some((sample) => sample.name === 'nodejs_gc_duration_seconds_count'));
    // Labels carry route patterns, never URLs (no query string, no id).
    const routes = new Set(now.map((sample) => sample.labels.route).filter((r) => r !== undefined));
    for (const route of routes) assert.doesNotMatch(route, /\?|\/\d+$/);
  });

  it('counts the logins refused with 503 when the hashing queue is full', async () => {
    const before = await scrape();
    // Unknown accounts, so that no throttle counter refuses them first.
    const statuses = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const response = await token({
          username: `nobody-${i}@myapi.com`,
          password: 'x'.repeat(9),
        });
        await response.arrayBuffer();
        return response.status;
      }),
    );
    const refused = statuses.filter((status) => status === 503).length;
    assert.ok(refused >= 1, `no login was refused: ${statuses.join(', ')}`);
    assert.equal(statuses.filter((status) => status === 401).length, 8 - refused);
    const now = await scrape();
    const delta = (labels: Record<string, string>) =>
      valueOf(now, 'myapi_logins_total', labels) - valueOf(before, 'myapi_logins_total', labels);
    assert.equal(delta({ outcome: 'unavailable' }), refused);
    assert.equal(delta({ outcome: 'invalid_credentials' }), 8 - refused);
  });

  it('is text that promtool check metrics accepts', async () => {
    const { code, output } = await promtoolCheck(await scrapeText());
    assert.equal(code, 0, output);
    assert.equal(output, '');
  });

  it('serves GET /metrics on the API port only with the bearer token', async () => {
    const url = `${running.url}/metrics`;
    const none = await fetch(url);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    await none.arrayBuffer();
    const wrong = await fetch(url, { headers: { authorization: 'Bearer not-the-token-at-all' } });
    assert.equal(wrong.status, 401);
    await wrong.arrayBuffer();
    const right = await fetch(url, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.equal(right.status, 200);
    const samples = parseExposition(await right.text());
    // Served by the API itself: this very request is in flight while it is gathered.
    assert.equal(valueOf(samples, 'myapi_http_requests_in_flight'), 1);
    assert.ok(valueOf(samples, 'myapi_logins_total') >= 1);
    // The metrics port serves /metrics alone, and only to GET and HEAD.
    const other = await fetch(metricsUrl.replace('/metrics', '/health'));
    assert.equal(other.status, 404);
    assert.equal(other.headers.get('content-type'), 'application/problem+json');
    await other.arrayBuffer();
    const post = await fetch(metricsUrl, { method: 'POST' });
    assert.equal(post.status, 405);
    await post.arrayBuffer();
  });

  it('is scraped by a real Prometheus server, whose query sees the refusal caused here', async () => {
    const prometheus = await PrometheusServer.start(new URL(metricsUrl).host);
    try {
      const series = await prometheus.waitForValue(
        'myapi_login_throttle_refusals_total{job="myapi"}',
        1,
      );
      assert.equal(series?.metric.instance, new URL(metricsUrl).host);
      await prometheus.waitForValue(
        'sum(myapi_http_request_duration_seconds_count{job="myapi",route="/movies/new",status_code="200"})',
        2,
      );
      await prometheus.waitForValue('up{job="myapi"}', 1);
    } finally {
      await prometheus.stop();
    }
  });
});

describe('the metrics settings', () => {
  it('refuse a short token without echoing it, and a port out of range', () => {
    const secret = 'short-secret';
    assert.throws(
      () =>
        loadSettings({
          env: { MYAPI_METRICS__TOKEN: secret, MYAPI_METRICS__PORT: '70000' },
          cwd: '/nonexistent',
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /MYAPI_METRICS__TOKEN: must be a secret of at least 16/);
        assert.match(error.message, /MYAPI_METRICS__PORT: must be an integer from 0 to 65535/);
        assert.ok(!error.message.includes(secret), error.message);
        return true;
      },
    );
  });

  it('leave metrics off by default, on 127.0.0.1 when a port is given', () => {
    const off = loadSettings({ env: {}, cwd: '/nonexistent' }).settings.metrics;
    assert.deepEqual(off, { host: '127.0.0.1' });
    const on = loadSettings({ env: { MYAPI_METRICS__PORT: '9464' }, cwd: '/nonexistent' });
    assert.deepEqual(on.settings.metrics, { host: '127.0.0.1', port: 9464 });
  });
});
