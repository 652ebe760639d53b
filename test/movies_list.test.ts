import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { getTableConfig } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { queryRows } from '../src/backend/database.js';
import { DEMO_MOVIES } from '../src/data/demo_movies.js';
import { movies } from '../src/models/movies.js';
import { createServices } from '../src/services/index.js';
import { describeEachDatabase, type TestApp } from './support/databases.js';
import { tutorialApp, writerAuthorization } from './support/http.js';

interface Movie {
  movie_id: number;
  title: string;
  released: number;
  rating: number;
}
interface Page {
  items: Movie[];
  next_cursor: string | null;
  total?: number;
}
type Key = keyof Movie;

const SORTS: Key[] = ['movie_id', 'title', 'released', 'rating'];

/** JS order for the numeric keys, ties by movie_id in the same direction (the API's contract). */
function sortedBy(list: readonly Movie[], key: Key, order: 'asc' | 'desc'): Movie[] {
  const sign = order === 'asc' ? 1 : -1;
  return [...list].sort((a, b) => {
    const x = a[key];
    const y = b[key];
    const primary = x < y ? -1 : x > y ? 1 : 0;
    return sign * (primary !== 0 ? primary : a.movie_id - b.movie_id);
  });
}

function nextLink(header: string | string[] | number | undefined): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join(', ') : String(header);
  const match = /^<([^>]+)>; rel="next"$/.exec(text);
  assert.ok(match, `Link header: ${text}`);
  return match[1];
}

describeEachDatabase('movie listing', (kind) => {
  let t: TestApp;
  let reader: string;
  before(async () => {
    ({ t, authorization: reader } = await tutorialApp(kind));
  });
  after(async () => {
    await t.close();
  });

  const get = (url: string) =>
    t.app.inject({ method: 'GET', url, headers: { authorization: reader } });

  /** Follows the Link headers from `url` to the end; every page must agree with its body. */
  async function walk(url: string): Promise<{ items: Movie[]; pages: number }> {
    const items: Movie[] = [];
    let pages = 0;
    for (let next: string | undefined = url; next !== undefined; pages++) {
      const response = await get(next);
      assert.equal(response.statusCode, 200, `${next}: ${response.body}`);
      const page = response.json<Page>();
      items.push(...page.items);
      const link = nextLink(response.headers.link);
      if (page.next_cursor === null) assert.equal(link, undefined);
      else assert.ok(link?.includes(`cursor=${page.next_cursor}`), link);
      next = link;
      assert.ok(pages < 200, 'runaway pagination');
    }
    return { items, pages };
  }

  it('lists the first page by movie_id with the default size, the total and a next link', async () => {
    const response = await get('/movies');
    assert.equal(response.statusCode, 200, response.body);
    const page = response.json<Page>();
    assert.equal(page.items.length, 50);
    assert.deepEqual(page.items, sortedBy(DEMO_MOVIES, 'movie_id', 'asc').slice(0, 50));
    assert.equal(page.total, DEMO_MOVIES.length);
    assert.equal(typeof page.next_cursor, 'string');
    assert.equal(nextLink(response.headers.link), `/movies?cursor=${String(page.next_cursor)}`);
  });

  for (const sort of SORTS) {
    for (const order of ['asc', 'desc'] as const) {
      it(`pages through every movie by ${sort} ${order}, each exactly once, in order`, async () => {
        const { items, pages } = await walk(`/movies?sort=${sort}&order=${order}&limit=7`);
        assert.equal(pages, Math.ceil(DEMO_MOVIES.length / 7));
        const oneGo = (await get(`/movies?sort=${sort}&order=${order}&limit=1000`)).json<Page>();
        assert.equal(oneGo.next_cursor, null);
        assert.deepEqual(items, oneGo.items, 'pages join up to the one-page answer');
        assert.equal(new Set(items.map((m) => m.movie_id)).size, DEMO_MOVIES.length);
        // Titles follow the database's collation; the other keys can be checked here.
        if (sort !== 'title') assert.deepEqual(items, sortedBy(DEMO_MOVIES, sort, order));
      });
    }
  }

  it('filters by release years and minimum rating, combined with AND', async () => {
    const { items } = await walk(
      '/movies?released_from=1990&released_to=1999&rating_min=8.6&limit=3',
    );
    const expected = DEMO_MOVIES.filter(
      (m) => m.released >= 1990 && m.released <= 1999 && m.rating >= 8.6,
    );
    assert.ok(expected.length > 3);
    assert.deepEqual(items, sortedBy(expected, 'movie_id', 'asc'));
    const first = (
      await get('/movies?released_from=1990&released_to=1999&rating_min=8.6')
    ).json<Page>();
    assert.equal(first.total, expected.length);
  });

  it('searches titles ignoring case and accents, with LIKE wildcards taken literally', async () => {
    const titles = async (q: string) =>
      (await get(`/movies?q=${encodeURIComponent(q)}`)).json<Page>().items.map((m) => m.title);
    assert.deepEqual(await titles('leon'), ['Léon: The Professional']);
    assert.deepEqual(await titles('LÉON: the'), ['Léon: The Professional']);
    assert.deepEqual(await titles('GODFATHER'), ['The Godfather', 'The Godfather Part II']);
    assert.deepEqual(await titles('%'), []);
    assert.deepEqual(await titles('_'), []);
    assert.deepEqual(await titles('no such film'), []);
    const response = await get('/movies?q=the&sort=released&order=desc&limit=5');
    const page = response.json<Page>();
    const expected = DEMO_MOVIES.filter((m) => m.title.toLowerCase().includes('the'));
    assert.equal(page.total, expected.length);
    assert.deepEqual(page.items, sortedBy(expected, 'released', 'desc').slice(0, 5));
  });

  it('keeps pages stable while movies are inserted and deleted between them', async () => {
    const writer = await writerAuthorization(t);
    const first = await get('/movies?sort=rating&order=desc&limit=10');
    const page1 = first.json<Page>();
    const before = sortedBy(DEMO_MOVIES, 'rating', 'desc');
    assert.deepEqual(page1.items, before.slice(0, 10));
    // One movie sorting before the cursor (must not appear), one after it (must appear).
    for (const movie of [
      { movie_id: 9001, title: 'Top of the list', released: 2020, rating: 9.9 },
      { movie_id: 9002, title: 'Further down', released: 2020, rating: 8.0 },
    ]) {
      const created = await t.app.inject({
        method: 'POST',
        url: '/movies',
        payload: movie,
        headers: { authorization: writer },
      });
      assert.equal(created.statusCode, 201, created.body);
    }
    const rest = await walk(nextLink(first.headers.link) ?? assert.fail('no next page'));
    const seen = [...page1.items, ...rest.items].map((m) => m.movie_id);
    assert.equal(new Set(seen).size, seen.length, 'no movie twice');
    assert.ok(!seen.includes(9001), 'an insert before the cursor does not shift later pages');
    assert.ok(seen.includes(9002), 'an insert after the cursor is found');
    for (const movie of DEMO_MOVIES)
      assert.ok(seen.includes(movie.movie_id), `${movie.movie_id} skipped`);
    for (const id of [9001, 9002]) {
      const deleted = await t.app.inject({
        method: 'DELETE',
        url: `/movies/${id}`,
        headers: { authorization: writer, 'if-match': '*' },
      });
      assert.equal(deleted.statusCode, 204);
    }
  });

  it('rejects a tampered or foreign cursor with 422 naming the cursor', async () => {
    const page = (await get('/movies?sort=title&limit=2')).json<Page>();
    const cursor = String(page.next_cursor);
    const forged = (value: unknown) =>
      Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
    for (const url of [
      `/movies?sort=rating&cursor=${cursor}`,
      `/movies?sort=title&order=desc&cursor=${cursor}`,
      `/movies/new?year=1990&rating=9&cursor=${cursor}`,
      '/movies?cursor=not-a-cursor!',
      '/movies?cursor=AAAA',
      `/movies?cursor=${forged(['movie_id', 'asc', 5, 6])}`,
      `/movies?cursor=${forged(['movie_id', 'asc', 'x', 'x'])}`,
      `/movies?sort=released&cursor=${forged(['released', 'asc', 1e12, 6])}`,
      `/movies?sort=rating&cursor=${forged(['rating', 'asc', 'high', 6])}`,
      `/movies?sort=title&cursor=${forged(['title', 'asc', 7, 6])}`,
      `/movies?cursor=${forged({ a: 1 })}`,
    ]) {
      const response = await get(url);
      assert.equal(response.statusCode, 422, `${url}: ${response.body}`);
      const body = response.json<{ errors: { field: string }[] }>();
      assert.deepEqual(
        body.errors.map((e) => e.field),
        ['querystring.cursor'],
        url,
      );
    }
    assert.equal((await get(`/movies?sort=title&limit=2&cursor=${cursor}`)).statusCode, 200);
  });

  it('bounds the page size: 1 to 1000', async () => {
    for (const url of [
      '/movies?limit=0',
      '/movies?limit=1001',
      '/movies/new?year=1990&rating=9&limit=1001',
      '/movies?sort=year',
      '/movies?order=up',
    ]) {
      assert.equal((await get(url)).statusCode, 422, url);
    }
    assert.equal((await get('/movies?limit=1000')).json<Page>().items.length, DEMO_MOVIES.length);
  });

  it('/movies/new pages with a Link header and keeps its bare-array shape', async () => {
    const all = DEMO_MOVIES.filter((m) => m.released >= 1990 && m.rating >= 8.5);
    const collected: Movie[] = [];
    let next: string | undefined = '/movies/new?year=1990&rating=8.5&limit=4';
    while (next !== undefined) {
      const response = await get(next);
      assert.equal(response.statusCode, 200, response.body);
      const body = response.json<Movie[]>();
      assert.ok(Array.isArray(body));
      assert.ok(body.length <= 4);
      collected.push(...body);
      next = nextLink(response.headers.link);
      if (next !== undefined)
        assert.match(next, /^\/movies\/new\?year=1990&rating=8\.5&limit=4&cursor=/);
    }
    assert.deepEqual(collected, sortedBy(all, 'released', 'asc'));
    const tutorial = await get('/movies/new?year=1990&rating=9');
    assert.equal(tutorial.headers.link, undefined, 'a complete answer has no next page');
  });

  it('/movies/new continues from a cursor of GET /movies?sort=released, never before the year', async () => {
    const byRelease = sortedBy(DEMO_MOVIES, 'released', 'asc');
    const listed = (await get('/movies?sort=released&limit=3')).json<Page>();
    const cursor = String(listed.next_cursor);
    // The cursor sits at the third-oldest movie, before 1990: the page starts at 1990.
    assert.ok((byRelease[2] as Movie).released < 1990);
    const fromStart = (await get(`/movies/new?year=1990&rating=0&cursor=${cursor}`)).json<
      Movie[]
    >();
    assert.deepEqual(
      fromStart,
      byRelease.filter((m) => m.released >= 1990),
    );
    // A cursor inside the range continues strictly after its movie.
    const head = (await get('/movies/new?year=1950&rating=8&limit=2')).json<Movie[]>();
    const inRange = (
      await get(`/movies?sort=released&released_from=1950&rating_min=8&limit=2`)
    ).json<Page>();
    const rest = (
      await get(`/movies/new?year=1950&rating=8&cursor=${String(inRange.next_cursor)}`)
    ).json<Movie[]>();
    const expected = byRelease.filter((m) => m.released >= 1950 && m.rating >= 8);
    assert.deepEqual(head, expected.slice(0, 2));
    assert.deepEqual(rest, expected.slice(2));
  });

  it('counts the total only while it is cheap, and /movies/new defaults to 1000 rows', async () => {
    await createServices(t.database).movies.seedSynthetic(1000);
    const first = (await get('/movies?limit=5')).json<Page>();
    assert.equal(first.total, undefined, 'more than 1000 matches: no total');
    assert.equal(first.items.length, 5);
    const filtered = (
      await get('/movies?released_from=1900&released_to=1930&limit=5')
    ).json<Page>();
    assert.equal(typeof filtered.total, 'number');
    const second = (await get(`/movies?limit=5&cursor=${String(first.next_cursor)}`)).json<Page>();
    assert.equal(second.total, undefined, 'later pages do not count again');
    const response = await get('/movies/new?year=1800&rating=0');
    assert.equal(response.json<Movie[]>().length, 1000);
    assert.ok(nextLink(response.headers.link), 'the 1000 synthetic and the demo movies: more');
    assert.equal(
      (await get('/movies/new?year=1800&rating=0&limit=100')).json<Movie[]>().length,
      100,
    );
  });

  it('has in the database exactly the indexes the model declares', async () => {
    const rows = await queryRows<{ indexname: string }>(
      t.database.db,
      sql`select indexname from pg_indexes where schemaname = 'myapi' and tablename = 'movies'`,
    );
    const declared = getTableConfig(movies).indexes.map((index) => index.config.name);
    assert.deepEqual(
      rows
        .map((r) => r.indexname)
        .filter((name) => name !== 'movies_pkey')
        .sort(),
      [...declared].sort(),
    );
  });

  it('describes every movies route in /openapi.json, writes needing movies:write', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Partial<
        Record<
          string,
          Partial<
            Record<
              string,
              { security?: Record<string, string[]>[]; responses: Record<string, unknown> }
            >
          >
        >
      >;
    }>();
    // The password flow's token with the scopes, or any bearer token pasted in (a PAT).
    const scopes = (path: string, method: string) => {
      const security = doc.paths[path]?.[method]?.security ?? [];
      assert.deepEqual(security[1], { HTTPBearer: [] }, `${method} ${path}`);
      return security[0]?.OAuth2PasswordBearer;
    };
    assert.deepEqual(scopes('/movies', 'get'), ['movies:read']);
    assert.deepEqual(scopes('/movies/new', 'get'), ['movies:read']);
    assert.deepEqual(scopes('/movies/{movie_id}', 'get'), ['movies:read']);
    assert.deepEqual(scopes('/movies', 'post'), ['movies:write']);
    for (const method of ['put', 'patch', 'delete']) {
      assert.deepEqual(scopes('/movies/{movie_id}', method), ['movies:write'], method);
    }
    // Swagger UI fills "Try it out" from these examples: a new movie's title, year and rating.
    type Schema = { properties?: Record<string, { examples?: unknown[] }> };
    type Operation = { requestBody?: { content: Record<string, { schema: Schema }> } };
    const body = doc as unknown as { paths: Record<string, Record<string, Operation>> };
    const properties =
      body.paths['/movies']?.post?.requestBody?.content['application/json']?.schema.properties ??
      {};
    assert.deepEqual(
      ['title', 'released', 'rating'].map((name) => properties[name]?.examples),
      [['Amélie'], [2001], [8.3]],
    );
    const statuses = (path: string, method: string) =>
      Object.keys(doc.paths[path]?.[method]?.responses ?? {});
    assert.ok(statuses('/movies', 'post').includes('201'));
    assert.ok(statuses('/movies/{movie_id}', 'delete').includes('204'));
    assert.ok(statuses('/movies/{movie_id}', 'put').includes('412'));
  });
});
