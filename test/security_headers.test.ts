// Safe defaults for browsers and proxies: security headers, no-store, CORS off unless allowed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { buildApp, type App } from '../src/app.js';
import { ConfigError, loadSettings } from '../src/backend/config.js';
import { createLogger } from '../src/backend/logging.js';
import { TOKEN_KEY, createTestDatabase, databaseKinds, LogCapture } from './support/databases.js';
import type { TestDatabase } from './support/databases.js';
import { form, seedTutorial, USER } from './support/http.js';

const ALLOWED = 'http://127.0.0.1:9876';
const OTHER = 'http://evil.example';

async function appWith(t: TestDatabase, corsOrigins: string): Promise<App> {
  const app = await buildApp({
    settings: { ...t.settings, cors: { origins: corsOrigins } },
    database: t.database,
    tokenKey: TOKEN_KEY,
    logger: createLogger('silent', new LogCapture()),
  });
  await app.ready();
  return app;
}

function assertSafeHeaders(response: LightMyRequestResponse, what: string): void {
  const h = response.headers;
  assert.equal(h['x-content-type-options'], 'nosniff', what);
  assert.equal(h['referrer-policy'], 'no-referrer', what);
  assert.equal(h['x-frame-options'], 'DENY', what);
  // helmet's other defaults come along (computed once, set on every answer).
  assert.equal(h['strict-transport-security'], 'max-age=31536000; includeSubDomains', what);
  assert.equal(h['cross-origin-opener-policy'], 'same-origin', what);
  assert.equal(h['x-permitted-cross-domain-policies'], 'none', what);
}

for (const kind of databaseKinds()) {
  describe(`security headers and CORS (${kind})`, () => {
    let t: TestDatabase;
    let app: App;
    let withCors: App;
    let bearer: string;

    before(async () => {
      t = await createTestDatabase(kind);
      app = await appWith(t, '');
      withCors = await appWith(t, ` ${ALLOWED} , https://app.example.com`);
      await seedTutorial({ ...t, app, logs: new LogCapture() });
      const token = await app.inject({
        method: 'POST',
        url: '/token',
        ...form({ username: USER.email, password: USER.password }),
      });
      assert.equal(token.statusCode, 200, token.body);
      assert.equal(token.headers['cache-control'], 'no-store');
      assertSafeHeaders(token, '/token');
      bearer = `Bearer ${token.json<{ access_token: string }>().access_token}`;
    });

    after(async () => {
      await app.close();
      await withCors.close();
      await t.close();
    });

    it('every kind of answer carries nosniff, a Referrer-Policy and refuses framing', async () => {
      const cases = [
        { url: '/health', status: 200 },
        { url: '/openapi.json', status: 200 },
        { url: '/movies/1', status: 401 },
        { url: '/movies/1', status: 200, authorization: bearer },
        { url: '/movies/abc', status: 422, authorization: bearer },
        { url: '/no/such/route', status: 404 },
      ];
      for (const { url, status, authorization } of cases) {
        const response = await app.inject({
          url,
          headers: authorization === undefined ? {} : { authorization },
        });
        assert.equal(response.statusCode, status, `${url}: ${response.body}`);
        assertSafeHeaders(response, url);
        const csp = String(response.headers['content-security-policy']);
        assert.match(csp, /default-src 'none'/, url);
        assert.match(csp, /frame-ancestors 'none'/, url);
      }
    });

    it('answers to requests with credentials say Cache-Control: no-store, whatever the status', async () => {
      for (const authorization of [bearer, 'Bearer not-a-token', 'Basic dXNlcjpwdw==']) {
        for (const url of ['/movies/1', '/users/me', '/movies/new?year=1990&rating=9']) {
          const response = await app.inject({ url, headers: { authorization } });
          assert.equal(response.headers['cache-control'], 'no-store', `${url} ${response.body}`);
        }
      }
      const anonymous = await app.inject({ url: '/health' });
      assert.equal(anonymous.headers['cache-control'], undefined);
    });

    it("/docs keeps a policy Swagger UI works under: its own scripts and styles, no one else's", async () => {
      const docs = await app.inject({ url: '/docs/' });
      assert.equal(docs.statusCode, 200);
      assertSafeHeaders(docs, '/docs/');
      const csp = String(docs.headers['content-security-policy']);
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /style-src 'self'/);
      assert.doesNotMatch(csp, /default-src 'none'/);
      assert.doesNotMatch(csp, /https:|upgrade-insecure-requests/);
    });

    it('CORS is off by default: no Access-Control-* header, even for a preflight', async () => {
      const preflight = await app.inject({
        method: 'OPTIONS',
        url: '/movies/1',
        headers: {
          origin: ALLOWED,
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'authorization',
        },
      });
      const simple = await app.inject({
        url: '/movies/1',
        headers: { origin: ALLOWED, authorization: bearer },
      });
      assert.equal(simple.statusCode, 200);
      for (const response of [preflight, simple]) {
        for (const name of Object.keys(response.headers)) {
          assert.doesNotMatch(name, /^access-control-/, `${name} without MYAPI_CORS__ORIGINS`);
        }
      }
    });

    it('with MYAPI_CORS__ORIGINS, a listed origin passes preflight with Authorization', async () => {
      for (const [method, url] of [
        ['GET', '/movies/1'],
        ['PATCH', '/movies/1'],
        ['DELETE', '/movies/1'],
        ['POST', '/token'],
      ] as const) {
        const preflight = await withCors.inject({
          method: 'OPTIONS',
          url,
          headers: {
            origin: ALLOWED,
            'access-control-request-method': method,
            'access-control-request-headers': 'authorization,content-type,if-match',
          },
        });
        assert.equal(preflight.statusCode, 204, preflight.body);
        assert.equal(preflight.headers['access-control-allow-origin'], ALLOWED);
        assert.match(String(preflight.headers['access-control-allow-methods']), new RegExp(method));
        const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase();
        for (const header of ['authorization', 'content-type', 'if-match']) {
          assert.ok(allowed.includes(header), allowed);
        }
        assert.equal(preflight.headers['access-control-allow-credentials'], undefined);
      }
      const get = await withCors.inject({
        url: '/movies/1',
        headers: { origin: ALLOWED, authorization: bearer },
      });
      assert.equal(get.statusCode, 200);
      assert.equal(get.headers['access-control-allow-origin'], ALLOWED);
      const exposed = String(get.headers['access-control-expose-headers']).toLowerCase();
      for (const header of ['etag', 'location', 'retry-after', 'www-authenticate']) {
        assert.ok(exposed.includes(header), exposed);
      }
    });

    it('with MYAPI_CORS__ORIGINS, an origin not on the list gets no Access-Control-Allow-Origin', async () => {
      const preflight = await withCors.inject({
        method: 'OPTIONS',
        url: '/movies/1',
        headers: {
          origin: OTHER,
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'authorization',
        },
      });
      assert.equal(preflight.headers['access-control-allow-origin'], undefined);
      const get = await withCors.inject({
        url: '/movies/1',
        headers: { origin: OTHER, authorization: bearer },
      });
      assert.equal(get.headers['access-control-allow-origin'], undefined);
    });
  });
}

describe('MYAPI_CORS__ORIGINS and MYAPI_HTTP__* settings', () => {
  it('refuses an origin that is not scheme://host[:port], naming the variable', () => {
    for (const value of ['*', 'app.example.com', 'https://app.example.com/path', 'ftp://x']) {
      assert.throws(
        () => loadSettings({ env: { MYAPI_CORS__ORIGINS: value }, cwd: '/nonexistent' }),
        (error: unknown) =>
          error instanceof ConfigError &&
          /^MYAPI_CORS__ORIGINS: must be/.test(error.problems[0] ?? ''),
        value,
      );
    }
  });

  it('reads the timeouts, and refuses one that is not a number of milliseconds', () => {
    const { settings } = loadSettings({
      env: { MYAPI_HTTP__REQUEST_TIMEOUT_MS: '5000', MYAPI_HTTP__DRAIN_MS: '0' },
      cwd: '/nonexistent',
    });
    assert.equal(settings.http.request_timeout_ms, 5000);
    assert.equal(settings.http.drain_ms, 0);
    assert.equal(settings.http.headers_timeout_ms, 20_000);
    assert.throws(
      () => loadSettings({ env: { MYAPI_HTTP__HEADERS_TIMEOUT_MS: 'soon' }, cwd: '/nonexistent' }),
      /MYAPI_HTTP__HEADERS_TIMEOUT_MS: must be milliseconds/,
    );
  });
});
