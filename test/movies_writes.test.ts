import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, it } from 'node:test';
import { describeEachDatabase, type TestApp } from './support/databases.js';
import { ADMIN, loginTokens, tutorialApp, writerAuthorization } from './support/http.js';

interface Problem {
  status: number;
  detail: string;
  errors?: { field: string; message: string }[];
}

/** Every write route, on a movie that exists. */
const WRITE_ROUTES = [
  ['POST', '/movies'],
  ['PUT', '/movies/1'],
  ['PATCH', '/movies/1'],
  ['DELETE', '/movies/1'],
] as const;

const AMELIE = { movie_id: 5001, title: 'Amélie', released: 2001, rating: 8.3 };

describeEachDatabase('movie writes', (kind) => {
  let t: TestApp;
  let reader: string;
  let writer: string;
  before(async () => {
    ({ t, authorization: reader } = await tutorialApp(kind));
    writer = await writerAuthorization(t);
  });
  after(async () => {
    await t.close();
  });

  const send = (
    method: 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET',
    url: string,
    payload?: unknown,
    headers: Record<string, string> = {},
  ) =>
    t.app.inject({
      method,
      url,
      headers: { authorization: writer, ...headers },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const read = (id: number) =>
    t.app.inject({ method: 'GET', url: `/movies/${id}`, headers: { authorization: reader } });
  const etagOf = async (id: number) => {
    const response = await read(id);
    assert.equal(response.statusCode, 200, response.body);
    const etag = response.headers.etag;
    assert.equal(typeof etag, 'string');
    return String(etag);
  };

  it('POST creates a movie: 201, Location, ETag, and the stored movie', async () => {
    const response = await send('POST', '/movies', { ...AMELIE, title: '  Amélie \n' });
    assert.equal(response.statusCode, 201, response.body);
    assert.equal(response.headers.location, '/movies/5001');
    // The documented digest, so tags issued by any version of the server keep matching.
    const digest = createHash('md5').update('5001/2001/8.3/Amélie').digest('hex');
    assert.equal(response.headers.etag, `"${digest}"`);
    assert.deepEqual(response.json(), AMELIE, 'the title is stored trimmed');
    const stored = await read(5001);
    assert.deepEqual(stored.json(), AMELIE);
    assert.equal(stored.headers.etag, response.headers.etag);
    const query = await t.app.inject({
      method: 'GET',
      url: '/movies/?movie_id=5001',
      headers: { authorization: reader },
    });
    assert.equal(query.headers.etag, response.headers.etag);
  });

  it('POST with a taken movie_id is 409 and changes nothing', async () => {
    const response = await send('POST', '/movies', { ...AMELIE, title: 'Other' });
    assert.equal(response.statusCode, 409, response.body);
    assert.equal(response.json<Problem>().detail, 'Movie 5001 already exists');
    assert.equal((await read(5001)).json<{ title: string }>().title, 'Amélie');
  });

  it('rejects values the columns cannot hold with 422, naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ rating: 10.0 }, 'body.rating'],
      [{ rating: 10 }, 'body.rating'],
      [{ rating: -0.1 }, 'body.rating'],
      [{ rating: 8.25 }, 'body.rating'],
      [{ rating: 'high' }, 'body.rating'],
      [{ released: 0 }, 'body.released'],
      [{ released: 1887 }, 'body.released'],
      [{ released: 2101 }, 'body.released'],
      [{ released: 2000.5 }, 'body.released'],
      [{ title: '' }, 'body.title'],
      [{ title: '   \t ' }, 'body.title'],
      [{ title: 'x'.repeat(501) }, 'body.title'],
      [{ movie_id: 0 }, 'body.movie_id'],
      [{ movie_id: 2_147_483_648 }, 'body.movie_id'],
    ];
    for (const [change, field] of cases) {
      const response = await send('POST', '/movies', { ...AMELIE, movie_id: 6000, ...change });
      assert.equal(response.statusCode, 422, `${JSON.stringify(change)}: ${response.body}`);
      const fields = (response.json<Problem>().errors ?? []).map((e) => e.field);
      assert.ok(fields.includes(field), `${JSON.stringify(change)}: ${response.body}`);
    }
    for (const missing of ['movie_id', 'title', 'released', 'rating']) {
      const body = Object.fromEntries(
        Object.entries({ ...AMELIE, movie_id: 6000 }).filter(([key]) => key !== missing),
      );
      const response = await send('POST', '/movies', body);
      assert.equal(response.statusCode, 422, missing);
    }
    assert.equal((await read(6000)).statusCode, 404, 'nothing was stored');
  });

  it('accepts the edges the columns can hold: 0.0, 9.9, 1888, 2100, 500 characters', async () => {
    const edges = [
      { movie_id: 6101, title: 'a', released: 1888, rating: 0 },
      { movie_id: 6102, title: 'é'.repeat(500), released: 2100, rating: 9.9 },
    ];
    for (const movie of edges) {
      const response = await send('POST', '/movies', movie);
      assert.equal(response.statusCode, 201, response.body);
      assert.deepEqual((await read(movie.movie_id)).json(), movie);
    }
  });

  it('refuses a 10 MB title with 413 before parsing it', async () => {
    const response = await send('POST', '/movies', {
      ...AMELIE,
      movie_id: 6200,
      title: 'x'.repeat(10 * 1024 * 1024),
    });
    assert.equal(response.statusCode, 413, response.body.slice(0, 200));
    assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
    assert.equal((await read(6200)).statusCode, 404);
  });

  it('PUT replaces a movie when If-Match is its current ETag', async () => {
    const before = await etagOf(5001);
    const response = await send(
      'PUT',
      '/movies/5001',
      {
        movie_id: 5001,
        title: 'Le Fabuleux Destin d’Amélie Poulain',
        released: 2001,
        rating: 8.4,
      },
      { 'if-match': before },
    );
    assert.equal(response.statusCode, 200, response.body);
    assert.notEqual(response.headers.etag, before);
    assert.equal(response.headers.etag, await etagOf(5001));
    assert.deepEqual((await read(5001)).json(), {
      movie_id: 5001,
      title: 'Le Fabuleux Destin d’Amélie Poulain',
      released: 2001,
      rating: 8.4,
    });
  });

  it('PUT with a body movie_id other than the path is 422', async () => {
    const response = await send(
      'PUT',
      '/movies/5001',
      { ...AMELIE, movie_id: 5002 },
      { 'if-match': await etagOf(5001) },
    );
    assert.equal(response.statusCode, 422, response.body);
    assert.deepEqual(
      response.json<Problem>().errors?.map((e) => e.field),
      ['body.movie_id'],
    );
  });

  it('PATCH changes only the given fields', async () => {
    const response = await send(
      'PATCH',
      '/movies/5001',
      { rating: 8.3 },
      { 'if-match': await etagOf(5001) },
    );
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), {
      movie_id: 5001,
      title: 'Le Fabuleux Destin d’Amélie Poulain',
      released: 2001,
      rating: 8.3,
    });
    const empty = await send('PATCH', '/movies/5001', {}, { 'if-match': '*' });
    assert.equal(empty.statusCode, 422, empty.body);
    const tooHigh = await send('PATCH', '/movies/5001', { rating: 10 }, { 'if-match': '*' });
    assert.equal(tooHigh.statusCode, 422, tooHigh.body);
  });

  it('a write without If-Match is 428 and changes nothing', async () => {
    const etag = await etagOf(5001);
    for (const [method, payload] of [
      ['PUT', AMELIE],
      ['PATCH', { rating: 1 }],
      ['DELETE', undefined],
    ] as const) {
      const response = await send(method, '/movies/5001', payload);
      assert.equal(response.statusCode, 428, `${method}: ${response.body}`);
      assert.equal(response.json<Problem>().status, 428);
    }
    assert.equal(await etagOf(5001), etag);
  });

  it('a stale If-Match is 412 with the current ETag, for PUT, PATCH and DELETE', async () => {
    const stale = await etagOf(5001);
    const changed = await send('PATCH', '/movies/5001', { released: 2002 }, { 'if-match': stale });
    assert.equal(changed.statusCode, 200, changed.body);
    const current = String(changed.headers.etag);
    for (const [method, payload] of [
      ['PUT', { title: 'Lost', released: 1999, rating: 1 }],
      ['PATCH', { rating: 1 }],
      ['DELETE', undefined],
    ] as const) {
      const response = await send(method, '/movies/5001', payload, { 'if-match': stale });
      assert.equal(response.statusCode, 412, `${method}: ${response.body}`);
      assert.equal(response.headers.etag, current);
    }
    const weak = await send('PATCH', '/movies/5001', { rating: 1 }, { 'if-match': `W/${current}` });
    assert.equal(weak.statusCode, 412, 'a weak tag never matches a write');
    const bad = await send('PATCH', '/movies/5001', { rating: 1 }, { 'if-match': 'abc' });
    assert.equal(bad.statusCode, 422, bad.body);
    const listed = await send(
      'PATCH',
      '/movies/5001',
      { released: 2001 },
      { 'if-match': `${stale}, ${current}` },
    );
    assert.equal(listed.statusCode, 200, 'any tag of a list may match');
    assert.deepEqual((await read(5001)).json<{ released: number }>().released, 2001);
  });

  it('of two concurrent updates from the same version, exactly one wins', async () => {
    const etag = await etagOf(5001);
    const [first, second] = await Promise.all([
      send('PATCH', '/movies/5001', { rating: 7.1 }, { 'if-match': etag }),
      send('PATCH', '/movies/5001', { rating: 7.2 }, { 'if-match': etag }),
    ]);
    const statuses = [first.statusCode, second.statusCode].sort();
    assert.deepEqual(statuses, [200, 412], `${first.body} ${second.body}`);
    const winner = first.statusCode === 200 ? first : second;
    assert.deepEqual((await read(5001)).json(), winner.json());
  });

  it('writes to a movie that does not exist are 404', async () => {
    for (const [method, payload] of [
      ['PUT', { title: 'x', released: 2000, rating: 1 }],
      ['PATCH', { rating: 1 }],
      ['DELETE', undefined],
    ] as const) {
      const response = await send(method, '/movies/777777', payload, { 'if-match': '*' });
      assert.equal(response.statusCode, 404, `${method}: ${response.body}`);
    }
  });

  it('DELETE with the current ETag is 204, and the movie is gone', async () => {
    const response = await send('DELETE', '/movies/5001', undefined, {
      'if-match': await etagOf(5001),
    });
    assert.equal(response.statusCode, 204, response.body);
    assert.equal(response.body, '');
    assert.equal((await read(5001)).statusCode, 404);
    const again = await send('DELETE', '/movies/5001', undefined, { 'if-match': '*' });
    assert.equal(again.statusCode, 404);
  });

  it('requires a bearer token on every write route', async () => {
    for (const [method, url] of WRITE_ROUTES) {
      const response = await t.app.inject({ method, url, payload: { rating: 1 } });
      assert.equal(response.statusCode, 401, `${method} ${url}`);
      assert.equal(response.headers['www-authenticate'], 'Bearer');
    }
    assert.equal((await read(1)).statusCode, 200, 'movie 1 untouched');
  });

  it('needs movies:write: a reader, or a superuser who asked for movies:read only, gets 403', async () => {
    const readOnlyAdmin = `Bearer ${(await loginTokens(t.app, ADMIN.email, ADMIN.password, 'movies:read')).access_token}`;
    const etag = await etagOf(1);
    for (const authorization of [reader, readOnlyAdmin]) {
      for (const [method, url] of WRITE_ROUTES) {
        const response = await t.app.inject({
          method,
          url,
          payload: { ...AMELIE, movie_id: method === 'POST' ? 5999 : 1, title: 'Hijacked' },
          headers: { authorization, 'if-match': etag },
        });
        assert.equal(response.statusCode, 403, `${method} ${url}: ${response.body}`);
        assert.match(
          String(response.headers['www-authenticate']),
          /error="insufficient_scope", scope="movies:write"/,
        );
      }
    }
    assert.equal((await read(5999)).statusCode, 404);
    assert.equal(await etagOf(1), etag, 'movie 1 untouched');
  });

  it('a token with movies:write but not movies:read may write, not read', async () => {
    const writeOnly = `Bearer ${(await loginTokens(t.app, ADMIN.email, ADMIN.password, 'movies:write')).access_token}`;
    const created = await t.app.inject({
      method: 'POST',
      url: '/movies',
      payload: { ...AMELIE, movie_id: 5998 },
      headers: { authorization: writeOnly },
    });
    assert.equal(created.statusCode, 201, created.body);
    const refused = await t.app.inject({
      method: 'GET',
      url: '/movies/5998',
      headers: { authorization: writeOnly },
    });
    assert.equal(refused.statusCode, 403);
  });
});
