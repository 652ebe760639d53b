import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEMO_MOVIES } from '../src/data/demo_movies.js';
import { databaseKinds, type TestApp } from './support/databases.js';
import { tutorialApp } from './support/http.js';

const TUTORIAL_RESULT = [
  { movie_id: 1, title: 'The Shawshank Redemption', released: 1994, rating: 9.2 },
  { movie_id: 3, title: 'The Dark Knight', released: 2008, rating: 9.0 },
];

for (const kind of databaseKinds()) {
  describe(`movies (${kind})`, () => {
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
}
