// The mixed traffic of the memory soak and the malformed requests in it: reads by id,
// /movies/new, list and search, logins, writes (each created movie deleted again, so the table
// stays the same size) and 5% malformed requests of the kinds issue 17 found.
import { EMAIL, PASSWORD, auth, randomId } from './app.mjs';

const WORDS = ['the', 'love', 'night', 'war', 'star', 'city', 'man', 'day', 'film', 'amé'];

/** The malformed kinds, in rotation: each one is something a client can send. */
export function malformed(i, token, maxId) {
  const h = auth(token);
  switch (i % 10) {
    case 0:
      return {
        method: 'POST',
        path: '/movies',
        headers: { ...h, 'content-type': 'application/json' },
        body: '{"title": ',
      };
    case 1:
      // Larger than Node's 16 KiB header limit: 431.
      return {
        path: `/movies/${randomId(maxId)}`,
        headers: { ...h, 'x-filler': 'x'.repeat(20_000) },
      };
    case 2:
      return { path: '/movies/Infinity', headers: h };
    case 3:
      return { path: '/movies?q=a%00b', headers: h };
    case 4:
      return { path: `/movies/${randomId(maxId)}`, headers: { authorization: 'Bearer not.a.jwt' } };
    case 5:
      return { path: '/no/such/route', headers: h };
    case 6:
      return {
        method: 'POST',
        path: '/movies',
        headers: { ...h, 'content-type': 'text/plain' },
        body: 'hello',
      };
    case 7:
      return { path: `/movies?cursor=${'Z'.repeat(900)}`, headers: h };
    case 8:
      return { path: '/movies/new?year=1e400&rating=9', headers: h };
    default:
      return {
        method: 'POST',
        path: '/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=%00&password=x',
      };
  }
}

/**
 * A request generator for `startLoad`: next(i, worker). `created[worker]` holds the movies a
 * connection created and has yet to delete.
 */
export function mixedTraffic({ token, maxId, malformedShare = 0.05 }) {
  const created = new Map();
  let bad = 0;
  const h = auth(token);
  const next = (i, worker) => {
    const r = Math.random();
    if (r < malformedShare) return malformed(bad++, token, maxId);
    const x = (r - malformedShare) / (1 - malformedShare);
    const mine = created.get(worker) ?? [];
    created.set(worker, mine);
    if (x < 0.05 && mine.length > 0) {
      return {
        method: 'DELETE',
        path: `/movies/${mine.shift()}`,
        headers: { ...h, 'if-match': '*' },
        kind: 'delete',
      };
    }
    if (x < 0.1) {
      const id = 100_000_000 + worker * 1_000_000 + (i % 1_000_000);
      const body = JSON.stringify({
        movie_id: id,
        title: `soak ${worker}-${i}`,
        released: 1990 + (i % 30),
        rating: (i % 99) / 10,
      });
      return {
        method: 'POST',
        path: '/movies',
        headers: { ...h, 'content-type': 'application/json' },
        body,
        kind: 'create',
      };
    }
    if (x < 0.105) {
      return {
        method: 'POST',
        path: '/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: EMAIL, password: PASSWORD }).toString(),
      };
    }
    if (x < 0.5) return { path: `/movies/${randomId(maxId)}`, headers: h };
    if (x < 0.6) return { path: `/movies/?movie_id=${randomId(maxId)}`, headers: h };
    if (x < 0.75) return { path: `/movies/new?year=${2000 + (i % 25)}&rating=8`, headers: h };
    const q = WORDS[i % WORDS.length];
    const sort = ['title', 'rating&order=desc', 'released', 'movie_id'][i % 4];
    if (x < 0.9) return { path: `/movies?q=${encodeURIComponent(q)}&limit=20`, headers: h };
    return { path: `/movies?released_from=1990&rating_min=5&sort=${sort}&limit=50`, headers: h };
  };
  /** Remembers each created movie so the same connection deletes it later. */
  const onResult = (req, res) => {
    if (req.kind === 'create' && res.status === 201) {
      const worker = Number(req.body.match(/soak (\d+)-/)?.[1]);
      const id = JSON.parse(res.body).movie_id;
      created.get(worker)?.push(id);
    }
  };
  return { next, onResult };
}
