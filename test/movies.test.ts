import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, it } from 'node:test';
import { DEMO_MOVIES } from '../src/data/demo_movies.js';
import { describeEachDatabase, QueryWatch, type TestApp } from './support/databases.js';
import { tutorialApp, writerAuthorization } from './support/http.js';

const TUTORIAL_RESULT = [
  { movie_id: 1, title: 'The Shawshank Redemption', released: 1994, rating: 9.2 },
  { movie_id: 3, title: 'The Dark Knight', released: 2008, rating: 9.0 },
];

/** The ETag the README documents: md5 of "movie_id/released/rating/title", quoted. */
function etagOf(movie: { movie_id: number; title: string; released: number; rating: number }) {
  const content = `${movie.movie_id}/${movie.released}/${movie.rating.toFixed(1)}/${movie.title}`;
  return `"${createHash('md5').update(content).digest('hex')}"`;
}

describeEachDatabase('movies', (kind) => {
  let t: TestApp;
  let authorization: string;
  before(async () => {
    ({ t, authorization } = await tutorialApp(kind));
  });
  after(async () => {
    await t.close();
  });

  const get = (url: string) => t.app.inject({ method: 'GET', url, headers: { authorization } });

  it("answers the tutorial's query exactly, as a bare JSON array with numeric ratings", async () => {
    const response = await get('/movies/new?year=1990&rating=9');
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^application\/json/);
    assert.deepEqual(response.json(), TUTORIAL_RESULT);
    assert.equal(
      response.body,
      '[{"movie_id":1,"title":"The Shawshank Redemption","released":1994,"rating":9.2},' +
        '{"movie_id":3,"title":"The Dark Knight","released":2008,"rating":9}]',
    );
  });

  it('filters released >= year and rating >= rating, oldest release first, then by movie_id', async () => {
    const response = await get('/movies/new?year=2000&rating=8.5');
    const expected = DEMO_MOVIES.filter((m) => m.released >= 2000 && m.rating >= 8.5)
      .map((m) => ({ ...m }))
      .sort((a, b) => a.released - b.released || a.movie_id - b.movie_id);
    assert.ok(expected.length > 3);
    assert.deepEqual(response.json(), expected);
    assert.deepEqual((await get('/movies/new?year=2100&rating=0')).json(), []);
  });

  it('gets one movie in both the path and the tutorial query form', async () => {
    const byPath = await get('/movies/2');
    assert.equal(byPath.statusCode, 200);
    assert.deepEqual(byPath.json(), {
      movie_id: 2,
      title: 'The Godfather',
      released: 1972,
      rating: 9.2,
    });
    assert.deepEqual((await get('/movies/?movie_id=2')).json(), byPath.json());
  });

  it('answers 404 for a movie that does not exist', async () => {
    for (const url of ['/movies/99999', '/movies/?movie_id=99999']) {
      const response = await get(url);
      assert.equal(response.statusCode, 404);
      assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
      assert.deepEqual(response.json(), {
        type: 'about:blank',
        title: 'Not Found',
        status: 404,
        detail: 'Movie 99999 not found',
      });
    }
  });

  it('answers 422 listing the failing fields for bad or missing parameters', async () => {
    const cases: [string, string[]][] = [
      ['/movies/new', ['querystring.year', 'querystring.rating']],
      ['/movies/new?year=abc&rating=9', ['querystring.year']],
      ['/movies/new?year=1990', ['querystring.rating']],
      ['/movies/new?year=1990&rating=ten', ['querystring.rating']],
      ['/movies/?movie_id=x', ['querystring.movie_id']],
      ['/movies/', ['querystring.movie_id']],
      ['/movies/abc', ['params.movie_id']],
      ['/movies/0', ['params.movie_id']],
      ['/movies/99999999999', ['params.movie_id']],
    ];
    for (const [url, fields] of cases) {
      const response = await get(url);
      assert.equal(response.statusCode, 422, url);
      const body = response.json<{ detail: string; errors: { field: string }[] }>();
      assert.equal(typeof body.detail, 'string');
      assert.deepEqual(body.errors.map((e) => e.field).sort(), [...fields].sort(), url);
    }
  });

  it('requires a bearer token on every movies route', async () => {
    for (const url of ['/movies/1', '/movies/?movie_id=1', '/movies/new?year=1990&rating=9']) {
      const response = await t.app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, 401, url);
      assert.equal(response.headers['www-authenticate'], 'Bearer');
    }
  });
});

describeEachDatabase('reads by id asked for together', (kind) => {
  let t: TestApp;
  let authorization: string;
  /** The statements the app runs. */
  const watch = new QueryWatch();
  const statements = () => watch.runs.map((run) => run.name);
  before(async () => {
    ({ t, authorization } = await tutorialApp(kind, { queryArrays: watch.wrap }));
  });
  after(async () => {
    await t.close();
  });

  const getAll = (urls: string[]) =>
    Promise.all(
      urls.map((url) => t.app.inject({ method: 'GET', url, headers: { authorization } })),
    );
  const URLS = ['/movies/1', '/movies/?movie_id=2', '/movies/2', '/movies/3', '/movies/99999'];

  it('share one query, and each gets its own movie and ETag, or its 404', async () => {
    watch.runs.length = 0;
    const responses = await getAll(URLS);
    assert.deepEqual(statements(), ['movies_by_id_any']);
    assert.deepEqual(
      responses.map((r) => r.statusCode),
      [200, 200, 200, 200, 404],
    );
    for (const [i, id] of [1, 2, 2, 3].entries()) {
      const movie = DEMO_MOVIES.find((m) => m.movie_id === id);
      const response = responses[i];
      assert.ok(movie && response);
      assert.deepEqual(response.json(), { ...movie });
      assert.equal(response.headers.etag, etagOf(movie), URLS[i]);
    }
    assert.equal(responses[4]?.json<{ detail: string }>().detail, 'Movie 99999 not found');

    watch.runs.length = 0;
    const [alone] = await getAll(['/movies/3']);
    assert.equal(alone?.statusCode, 200);
    assert.deepEqual(statements(), ['movies_by_id'], 'a lone read runs the single-key statement');
  });

  it('fail together with 503 when their query fails, and the next reads are answered', async () => {
    watch.failNext(
      Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' }),
      'movies_by_id_any',
    );
    const failed = await getAll(URLS);
    assert.deepEqual(
      failed.map((r) => r.statusCode),
      [503, 503, 503, 503, 503],
    );
    for (const response of failed) {
      assert.equal(response.headers['retry-after'], '5');
      assert.equal(response.json<{ detail: string }>().detail, 'Database unavailable');
    }
    const again = await getAll(URLS);
    assert.deepEqual(
      again.map((r) => r.statusCode),
      [200, 200, 200, 200, 404],
    );
  });
});

describeEachDatabase('pages of /movies/new asked for together', (kind) => {
  let t: TestApp;
  let authorization: string;
  const watch = new QueryWatch();
  before(async () => {
    ({ t, authorization } = await tutorialApp(kind, { queryArrays: watch.wrap }));
  });
  after(async () => {
    await t.close();
  });

  const get = (url: string) => t.app.inject({ method: 'GET', url, headers: { authorization } });
  const answer = (response: { statusCode: number; body: string; headers: { link?: unknown } }) => ({
    status: response.statusCode,
    body: response.body,
    link: response.headers.link,
  });
  const SAME = '/movies/new?year=1990&rating=9';
  const URLS = [SAME, SAME, `${SAME}&limit=1`, SAME, '/movies/new?year=1950&rating=9'];

  it('share one query per page, and each gets the answer it gets alone', async () => {
    const alone = [];
    for (const url of URLS) alone.push(answer(await get(url)));
    assert.notEqual(alone[2]?.link, undefined, 'limit=1 has a next page');

    watch.runs.length = 0;
    const together = await Promise.all(URLS.map(get));
    assert.deepEqual(together.map(answer), alone);
    const pages = watch.runs.filter((run) => run.name === 'movies_released_since');
    assert.equal(pages.length, 3, 'one query for each distinct page, not one per request');
  });

  it('answer from a query started after they asked: a write before is seen', async () => {
    const movie = { movie_id: 9001, title: 'Asked For Together', released: 2020, rating: 9.5 };
    const created = await t.app.inject({
      method: 'POST',
      url: '/movies',
      payload: movie,
      headers: { authorization: await writerAuthorization(t) },
    });
    assert.equal(created.statusCode, 201, created.body);
    for (const response of await Promise.all([get(SAME), get(SAME)])) {
      assert.ok(response.json<{ movie_id: number }[]>().some((m) => m.movie_id === 9001));
    }
  });

  it('fail together with 503 when their query fails, and the next pages are answered', async () => {
    watch.failNext(
      Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' }),
      'movies_released_since',
    );
    const failed = await Promise.all([get(SAME), get(SAME), get(SAME)]);
    assert.deepEqual(
      failed.map((r) => r.statusCode),
      [503, 503, 503],
    );
    const again = await Promise.all([get(SAME), get(SAME)]);
    assert.deepEqual(
      again.map((r) => r.statusCode),
      [200, 200],
    );
  });
});
