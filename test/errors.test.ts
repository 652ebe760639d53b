import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { createLogger } from '../src/backend/logging.js';
import { describeEachDatabase, LogCapture, type TestApp } from './support/databases.js';
import { tutorialApp } from './support/http.js';

describeEachDatabase('errors, logs and operations', (kind) => {
  let t: TestApp;
  let authorization: string;
  before(async () => {
    ({ t, authorization } = await tutorialApp(kind));
  });
  after(async () => {
    await t.close();
  });

  it('answers unknown routes and methods with a problem document', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/nope?secret=1' });
    assert.equal(response.statusCode, 404);
    assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
    assert.equal(response.json<{ detail: string }>().detail, 'Route GET /nope not found');
  });

  it('answers a body it cannot read with a 4xx problem, not a crash', async () => {
    const json = await t.app.inject({
      method: 'POST',
      url: '/token',
      payload: '{"username":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(json.statusCode, 400);
    assert.match(String(json.headers['content-type']), /^application\/problem\+json/);
    const unreadable = json.json<{ status: unknown; detail: unknown }>();
    assert.equal(unreadable.status, 400);
    assert.match(String(unreadable.detail), /not valid JSON/);
    const xml = await t.app.inject({
      method: 'POST',
      url: '/token',
      payload: '<x/>',
      headers: { 'content-type': 'application/xml' },
    });
    assert.equal(xml.statusCode, 415);
    assert.match(String(xml.headers['content-type']), /^application\/problem\+json/);
  });

  it('refuses an unknown query parameter or body field with 422 naming it, never ignores it', async () => {
    const typo = await t.app.inject({
      method: 'GET',
      url: '/movies/new?year=1990&rating=9&raiting=9.5',
      headers: { authorization },
    });
    assert.equal(typo.statusCode, 422, typo.body);
    assert.deepEqual(typo.json<{ errors: unknown }>().errors, [
      { field: 'querystring.raiting', message: 'must NOT have additional properties' },
    ]);
    const body = await t.app.inject({
      method: 'PATCH',
      url: '/users/me',
      payload: { name: 'x', is_superuser: true },
      headers: { authorization },
    });
    assert.equal(body.statusCode, 422, body.body);
    assert.equal(
      body.json<{ errors: { field: string }[] }>().errors[0]?.field,
      'body.is_superuser',
    );
  });

  it('gives every response a request id, keeps a sane one from the client, and logs with it', async () => {
    const response = await t.app.inject({
      method: 'GET',
      url: '/movies/1',
      headers: { authorization, 'x-request-id': 'trace-abc.123' },
    });
    assert.equal(response.headers['x-request-id'], 'trace-abc.123');
    const lines = t.logs.lines.filter((line) => line.reqId === 'trace-abc.123');
    assert.deepEqual(
      lines.map((line) => [line.msg, line.method, line.url, line.status]),
      [['request completed', 'GET', '/movies/1', 200]],
      'one access-log line per request, with its id',
    );

    const hostile = await t.app.inject({
      method: 'GET',
      url: '/health',
      headers: { 'x-request-id': 'x\ninjected: 1' },
    });
    assert.match(String(hostile.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  it("writes the access line byte for byte as pino's info would", async () => {
    const response = await t.app.inject({
      method: 'GET',
      url: '/movies?q="é\\',
      headers: { authorization, 'x-request-id': 'byte-for-byte' },
    });
    assert.equal(response.statusCode, 200);
    const written = t.logs.raw.filter((line) => line.includes('"reqId":"byte-for-byte"'));
    assert.equal(written.length, 1);
    const [line] = t.logs.lines.filter((l) => l.reqId === 'byte-for-byte');
    const pinoWrites = new LogCapture();
    createLogger('info', pinoWrites)
      .child({ reqId: 'byte-for-byte' })
      .info(
        { method: line?.method, url: line?.url, status: line?.status, ms: line?.ms },
        'request completed',
      );
    const withoutTime = (text: string | undefined) => text?.replace(/"time":[0-9]+/, '');
    assert.equal(withoutTime(written[0]), withoutTime(pinoWrites.raw[0]));
    assert.match(String(line?.url), /q=/);
  });

  it('logs a rejected request once, with where it was raised', async () => {
    const response = await t.app.inject({
      method: 'GET',
      url: '/movies/424242',
      headers: { authorization, 'x-request-id': 'missing-movie' },
    });
    assert.equal(response.statusCode, 404);
    const rejected = t.logs.lines.filter(
      (line) => line.reqId === 'missing-movie' && line.msg === 'request rejected',
    );
    assert.equal(rejected.length, 1);
    const [line] = rejected;
    assert.deepEqual(
      { status: line?.status, detail: line?.detail },
      { status: 404, detail: 'Movie 424242 not found' },
    );
    // `where` is the frame that raised it: a line of our own source that throws the 404.
    const where = String(line?.where);
    const frame = /(\/[^\s()]+\/src\/[^\s()]+\.ts):(\d+):\d+\)?$/.exec(where);
    assert.ok(frame, `not a frame of src/: ${where}`);
    const [, file = '', lineNumber = '0'] = frame;
    const source = readFileSync(file, 'utf8').split('\n')[Number(lineNumber) - 1] ?? '';
    assert.match(source, /throw new NotFoundError\(/, `${where}: ${source}`);
  });

  it('serves /docs under a policy that allows only this server, over plain http too', async () => {
    const docs = await t.app.inject({ method: 'GET', url: '/docs' });
    assert.equal(docs.statusCode, 200);
    const policy = String(docs.headers['content-security-policy']);
    assert.match(policy, /default-src 'self'/);
    assert.doesNotMatch(policy, /upgrade-insecure-requests|https:|validator/);
  });

  it('reports liveness and readiness', async () => {
    const health = await t.app.inject({ method: 'GET', url: '/health' });
    assert.deepEqual(health.json(), { status: 'ok' });
    const ready = await t.app.inject({ method: 'GET', url: '/ready' });
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { status: 'ready', database: 'ok' });
  });

  it('hides a bug behind a bare 500 and logs it once with its stack', async () => {
    // Schema drift (a table gone under the running app) is a bug, not an outage.
    await t.database.db.execute(sql`alter table myapi.movies rename to movies_gone`);
    try {
      const response = await t.app.inject({
        method: 'GET',
        url: '/movies/1',
        headers: { authorization, 'x-request-id': 'schema-drift' },
      });
      assert.equal(response.statusCode, 500);
      assert.deepEqual(response.json(), {
        type: 'about:blank',
        title: 'Internal Server Error',
        status: 500,
        detail: 'Internal server error',
      });
      assert.doesNotMatch(response.body, /movies|relation|select/i);
      const logged = t.logs.lines.filter(
        (line) => line.reqId === 'schema-drift' && Number(line.level) >= 50,
      );
      assert.equal(logged.length, 1);
      const err = logged[0]?.err as { stack?: string } | undefined;
      assert.match(String(err?.stack), /relation "myapi.movies" does not exist/);
    } finally {
      await t.database.db.execute(sql`alter table myapi.movies_gone rename to movies`);
    }
  });

  // Last: it closes the database under the running app.
  it('answers 503 with nothing internal when the database is gone, and logs the cause', async () => {
    await t.database.close();
    // The database is closed: keep after() from closing it twice.
    t.database.close = async () => undefined;
    for (const url of ['/ready', '/movies/1']) {
      const response = await t.app.inject({
        method: 'GET',
        url,
        headers: { authorization, 'x-request-id': `lost-${url.length}` },
      });
      assert.equal(response.statusCode, 503, url);
      assert.equal(response.headers['retry-after'], '5');
      assert.deepEqual(response.json(), {
        type: 'about:blank',
        title: 'Service Unavailable',
        status: 503,
        detail: 'Database unavailable',
      });
    }
    const login503 = await t.app.inject({
      method: 'POST',
      url: '/token',
      payload: 'username=test_user@myapi.com&password=qwerty123',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(login503.statusCode, 503);
    const logged = t.logs.lines.filter((line) => line.reqId === 'lost-6');
    const refusals = logged.filter((line) => Number(line.level) >= 40);
    assert.equal(refusals.length, 1, 'logged once');
    const [refusal] = refusals;
    assert.ok(refusal);
    assert.equal(refusal.level, 40, 'an expected condition is a warning, not an error');
    assert.match(String(refusal.cause), /closed|end on the pool/i, 'with its cause');
  });
});
