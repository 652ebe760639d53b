// Bad input is a 4xx naming the field, never a 5xx; every error is a documented problem document.
import assert from 'node:assert/strict';
import { request as httpRequest, Agent, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import { describeEachDatabase, type TestApp } from './support/databases.js';
import { adminAuthorization, form, tutorialApp } from './support/http.js';

interface Problem {
  status: number;
  detail: string;
  error?: string;
  errors?: { field: string; message: string }[];
}

/** One request over a real socket, through `agent` (keep-alive), with the whole answer. */
function send(
  port: number,
  agent: Agent,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The operations that raise OAuth2's errors (RFC 6749 section 5.2, RFC 7009, RFC 7662). */
const OAUTH_ENDPOINTS = new Set(['post /token', 'post /token/revoke', 'post /token/introspect']);

describeEachDatabase('bad input and the error contract', (kind) => {
  let t: TestApp;
  let user: string;
  let admin: string;
  let port: number;
  before(async () => {
    ({ t, authorization: user } = await tutorialApp(kind));
    admin = await adminAuthorization(t);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as AddressInfo).port;
  });
  after(async () => {
    await t.close();
  });

  async function problem(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    payload?: object,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Problem }> {
    const response = await t.app.inject({
      method,
      url,
      headers: { authorization: admin, ...headers },
      ...(payload === undefined ? {} : { payload }),
    });
    assert.match(String(response.headers['content-type']), /^application\/problem\+json/, url);
    return { status: response.statusCode, body: response.json<Problem>() };
  }

  it('refuses a NUL byte in any string with 422 naming the field', async () => {
    const cases: [Parameters<typeof problem>[0], string, object | undefined, string][] = [
      ['GET', '/movies?q=a%00b', undefined, 'querystring.q'],
      ['GET', '/movies?cursor=%00', undefined, 'querystring.cursor'],
      ['GET', '/movies/new?year=1990&rating=1&cursor=a%00', undefined, 'querystring.cursor'],
      [
        'POST',
        '/movies',
        { movie_id: 7001, title: 'a\u0000b', released: 2000, rating: 5 },
        'body.title',
      ],
      ['PUT', '/movies/1', { title: '\u0000', released: 2000, rating: 5 }, 'body.title'],
      ['PATCH', '/movies/1', { title: 'x\u0000' }, 'body.title'],
      ['PATCH', '/users/me', { name: 'x\u0000y' }, 'body.name'],
      ['PATCH', '/users/1', { name: '\u0000' }, 'body.name'],
      [
        'POST',
        '/users',
        { name: 'n\u0000', email: 'nul@myapi.com', password: 'long enough password' },
        'body.name',
      ],
      ['POST', '/users/me/password', { current_password: 'x\u0000', new_password: 'y' }, ''],
    ];
    for (const [method, url, payload, field] of cases) {
      const headers: Record<string, string> = method === 'PUT' ? { 'if-match': '*' } : {};
      const { status, body } = await problem(method, url, payload, headers);
      assert.equal(status, 422, `${method} ${url}: ${JSON.stringify(body)}`);
      assert.equal(typeof body.detail, 'string');
      const named = body.errors?.find((error) => error.message.includes('NUL'));
      assert.ok(named, `${method} ${url} names the NUL`);
      if (field !== '') assert.equal(named.field, field);
    }
  });

  it('refuses a cursor whose title holds a NUL with 422 naming the cursor', async () => {
    const cursor = Buffer.from(JSON.stringify(['title', 'asc', 'a\u0000', 1])).toString(
      'base64url',
    );
    const { status, body } = await problem('GET', `/movies?sort=title&cursor=${cursor}`);
    assert.equal(status, 422, JSON.stringify(body));
    assert.equal(body.errors?.[0]?.field, 'querystring.cursor');
  });

  it('answers a NUL at the token endpoints with invalid_request, as RFC 6749 says', async () => {
    const forms: [string, Record<string, string>, string][] = [
      ['/token', { username: 'a\u0000b@myapi.com', password: 'x' }, 'username'],
      ['/token', { username: 'test_user@myapi.com', password: 'x\u0000' }, 'password'],
      ['/token', { grant_type: 'refresh_token', refresh_token: 'a\u0000' }, 'refresh_token'],
      ['/token/revoke', { token: 'a\u0000b' }, 'token'],
    ];
    for (const [url, fields, field] of forms) {
      const response = await t.app.inject({ method: 'POST', url, ...form(fields) });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.headers['content-type'], 'application/json; charset=utf-8', url);
      const body = response.json<Problem>();
      assert.equal(body.error, 'invalid_request');
      assert.match(body.detail, new RegExp(`${field} must not contain a NUL`));
    }
  });

  it('refuses numbers that are not plain decimals (Infinity, 1e400, 0x1, 1e3) with 422', async () => {
    const values = ['Infinity', '-Infinity', '1e400', '0x1', '0b101', '1e3', '1.0', ' 1', 'NaN'];
    const targets: [string, string][] = [
      ['/movies/{v}', 'params.movie_id'],
      ['/movies/?movie_id={v}', 'querystring.movie_id'],
      ['/users/{v}', 'params.user_id'],
      ['/users?after={v}', 'querystring.after'],
      ['/users?limit={v}', 'querystring.limit'],
      ['/movies?limit={v}', 'querystring.limit'],
      ['/movies?released_from={v}', 'querystring.released_from'],
      ['/movies/new?year={v}&rating=1', 'querystring.year'],
    ];
    for (const [template, field] of targets) {
      for (const value of values) {
        const url = template.replace('{v}', encodeURIComponent(value));
        const { status, body } = await problem('GET', url);
        assert.equal(status, 422, `${url}: ${JSON.stringify(body)}`);
        assert.deepEqual(
          body.errors?.map((error) => error.field),
          [field],
          url,
        );
      }
    }
    for (const value of ['-Infinity', 'Infinity', '1e400', '0x1', '1e0']) {
      const { status, body } = await problem('GET', `/movies?rating_min=${value}`);
      assert.equal(status, 422, `rating_min=${value}`);
      assert.equal(body.errors?.[0]?.field, 'querystring.rating_min');
    }
    // Plain decimals still work, in the query and as strings in a JSON body.
    const ok = await t.app.inject({
      method: 'GET',
      url: '/movies?rating_min=8.5&limit=2&released_from=1990',
      headers: { authorization: user },
    });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  it('refuses loosely typed JSON values and non-finite numbers in bodies, naming the field', async () => {
    const bodies: [object | string, string][] = [
      [{ movie_id: '1e3', title: 'x', released: 2000, rating: 5 }, 'body.movie_id'],
      [{ movie_id: true, title: 'x', released: 2000, rating: 5 }, 'body.movie_id'],
      [{ movie_id: 7002, title: 'x', released: 2000, rating: 'Infinity' }, 'body.rating'],
      [{ movie_id: 7002, title: 12, released: 2000, rating: 5 }, 'body.title'],
      [{ movie_id: 7002, title: null, released: 2000, rating: 5 }, 'body.title'],
      ['{"movie_id":1e400,"title":"x","released":2000,"rating":5}', 'body.movie_id'],
    ];
    for (const [payload, field] of bodies) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/movies',
        headers: { authorization: admin, 'content-type': 'application/json' },
        payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
      });
      assert.equal(response.statusCode, 422, response.body);
      assert.ok(
        response.json<Problem>().errors?.some((error) => error.field === field),
        `${response.body} names ${field}`,
      );
    }
    const deactivate = await problem('PATCH', '/users/1', { is_active: null });
    assert.equal(deactivate.status, 422, 'null is not false');
    const decimal = await t.app.inject({
      method: 'POST',
      url: '/movies',
      headers: { authorization: admin },
      payload: { movie_id: '7003', title: 'Decimal strings', released: '2001', rating: '8.5' },
    });
    assert.equal(decimal.statusCode, 201, decimal.body);
  });

  it('refuses unknown query parameters on routes that declare none', async () => {
    const routes: [Parameters<typeof problem>[0], string, object | undefined][] = [
      ['GET', '/users/me?debug=1', undefined],
      ['GET', '/movies/1?x=1', undefined],
      ['PATCH', '/users/me?is_superuser=true', { name: 'test user' }],
      ['POST', '/users?x=1', { name: 'q', email: 'q@myapi.com', password: 'long password 1' }],
      ['GET', '/health?x=1', undefined],
    ];
    for (const [method, url, payload] of routes) {
      const { status, body } = await problem(method, url, payload);
      assert.equal(status, 422, `${method} ${url}`);
      assert.match(body.errors?.[0]?.field ?? '', /^querystring\./);
    }
  });

  it('documents the shared error responses on every operation of /openapi.json', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    const document = response.json<{
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    }>();
    let operations = 0;
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        operations += 1;
        const statuses = Object.keys(operation.responses);
        const expected = ['400', '408', '414', '422', '431', '503'];
        if (method !== 'get') expected.push('413', '415');
        for (const status of expected) {
          assert.ok(statuses.includes(status), `${method} ${path} documents ${status}`);
          // The token endpoints' OAuth2 errors are application/json (RFC 6749 section 5.2);
          // their 400 is also a body that does not parse, a problem as everywhere else.
          const oauth = status === '400' && OAUTH_ENDPOINTS.has(`${method} ${path}`);
          assert.deepEqual(
            Object.keys(
              (operation.responses[status] as { content: Record<string, unknown> }).content,
            ).sort(),
            oauth ? ['application/json', 'application/problem+json'] : ['application/problem+json'],
            `${method} ${path} ${status}`,
          );
        }
      }
    }
    assert.ok(operations >= 15, `${operations} operations`);
  });

  it('answers a path parameter that is too long (414) or badly encoded (400) with a problem', async () => {
    const { status, body } = await problem('GET', `/movies/${'1'.repeat(200)}`);
    assert.equal(status, 414);
    assert.equal(body.detail, 'A path parameter is too long');
    const badUrl = await problem('GET', '/movies/%E0%A4%A');
    assert.equal(badUrl.status, 400);
    assert.equal(badUrl.body.detail, 'The URL is malformed (bad percent-encoding)');
  });

  it('answers malformed JSON, a body too large and an unknown media type as problems', async () => {
    const cases: [Record<string, string>, string, number][] = [
      [{ 'content-type': 'application/json' }, '{"title":', 400],
      [{ 'content-type': 'application/json' }, `{"title":"${'x'.repeat(70_000)}"}`, 413],
      [{ 'content-type': 'application/xml' }, '<movie/>', 415],
    ];
    const agent = new Agent({ keepAlive: true });
    try {
      for (const [headers, body, expected] of cases) {
        const response = await send(port, agent, {
          method: 'POST',
          path: '/movies',
          headers: { ...headers, authorization: admin },
          body,
        });
        assert.equal(response.status, expected, response.body);
        // A body that was not read to its end ends the connection, and the answer says so.
        if (expected !== 415) assert.equal(response.headers.connection, 'close', String(expected));
        assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
        const parsed = JSON.parse(response.body) as Problem;
        assert.equal(parsed.status, expected);
        assert.equal(typeof parsed.detail, 'string');
        assert.notEqual(parsed.detail, '');
      }
    } finally {
      agent.destroy();
    }
  });

  it('closes with Connection: close and a problem after headers too large, and serves the next request', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await send(port, agent, { path: '/health' });
      assert.equal(first.status, 200);
      const tooLarge = await send(port, agent, {
        path: '/health',
        headers: { 'x-padding': 'x'.repeat(20_000) },
      });
      assert.equal(tooLarge.status, 431);
      assert.equal(tooLarge.headers.connection, 'close');
      assert.match(String(tooLarge.headers['content-type']), /^application\/problem\+json/);
      assert.equal(
        (JSON.parse(tooLarge.body) as Problem).detail,
        'The request line and headers are too large',
      );
      // The same keep-alive agent: its next request must not go into the closed socket.
      for (let i = 0; i < 5; i += 1) {
        const next = await send(port, agent, { path: '/health' });
        assert.equal(next.status, 200);
      }
    } finally {
      agent.destroy();
    }
  });
});
