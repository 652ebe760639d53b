import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort, startServer, tempDir, TEST_TIMEOUT_MS, type Server } from './support/process.js';
import { parseExposition, valueOf } from './support/prometheus.js';
import { bearerGet, bearerSend, cli, newUser, TOKEN_KEY, tokenFor } from './support/scale_out.js';
import { scaled } from './support/timeouts.js';
import { query, startTopology, waitFor, type Topology } from './support/topology.js';

/**
 * Movie reads from a streaming replica (MYAPI_DATABASE__REPLICAS). The topology, made here: a
 * private primary, a standby made from it with pg_basebackup -R, and PgBouncer in front of the
 * primary. Pausing the standby's replay makes its lag visible: a client that wrote reads its own
 * write, another client sees the replica's older state until it replays; a stopped replica
 * hands its reads to the primary; a stopped primary leaves the reads on the replica and answers
 * writes and logins with a quick 503.
 */
describe('movie reads from a streaming replica', { timeout: TEST_TIMEOUT_MS * 8 }, () => {
  let topology: Topology;
  let env: Record<string, string>;
  let cwd: string;
  let server: Server;
  let writerToken: string;
  let otherToken: string;
  let metricsUrl: string;

  const standbyDsn = () => topology.standby?.dsn() ?? '';
  const replayed = async () => {
    const [row] = await query<{ n: number }>(
      standbyDsn(),
      'select count(*)::int as n from myapi.movies',
    );
    const [primary] = await query<{ n: number }>(
      topology.primary.dsn(),
      'select count(*)::int as n from myapi.movies',
    );
    return row?.n === primary?.n;
  };

  before(
    async () => {
      topology = await startTopology({ standby: true, bouncer: true });
      cwd = tempDir();
      env = {
        MYAPI_DATABASE__DSN: topology.bouncer?.dsn() ?? '',
        MYAPI_DATABASE__PREPARED_STATEMENTS: 'false',
        MYAPI_DATABASE__LISTEN_DSN: topology.primary.dsn(),
        MYAPI_DATABASE__REPLICAS: standbyDsn(),
        MYAPI_DATABASE__REPLICA_CHECK_MS: '100',
        MYAPI_TOKEN_KEY: TOKEN_KEY,
      };
      metricsUrl = `http://127.0.0.1:${await freePort()}/metrics`;
      await cli(['migrate'], cwd, env);
      await cli(['seed'], cwd, env);
      const writer = await newUser(cwd, env, 'writer@replicas.test', true);
      const other = await newUser(cwd, env, 'other@replicas.test', true);
      await waitFor('the standby to replay the seed', replayed);
      server = await startServer(cwd, { ...env, MYAPI_METRICS__PORT: new URL(metricsUrl).port });
      writerToken = (await tokenFor(server.url, writer)).access_token;
      otherToken = (await tokenFor(server.url, other)).access_token;
    },
    { timeout: TEST_TIMEOUT_MS * 2 },
  );
  after(async () => {
    if (server.alive) await server.stop();
  });

  const movieStatus = async (token: string, id: number) =>
    (await bearerGet(`${server.url}/movies/${id}`, token)).status;
  const titlesOf = (text: string) => (JSON.parse(text) as { title: string }[]).map((m) => m.title);

  it('reads from the replica, and a writer reads its own write while others see the lag', async () => {
    await query(standbyDsn(), 'select pg_wal_replay_pause()');
    try {
      // Written on the primary behind myapi's back: only a read from the primary would see it.
      await query(
        topology.primary.dsn(),
        "insert into myapi.movies (movie_id, title, released, rating) values (700001, 'Behind the back', 2024, 9.5)",
      );
      await delay(scaled(500));
      assert.equal(await movieStatus(otherToken, 700_001), 404, 'the read came from the primary');
      assert.equal(await movieStatus(writerToken, 700_001), 404, 'the read came from the primary');

      // Written through myapi: the writer reads it at once, by id, in /movies/new and in a search.
      const movie = { movie_id: 700_002, title: 'Read your writes', released: 2025, rating: 9.9 };
      const created = await bearerSend('POST', `${server.url}/movies`, writerToken, movie);
      assert.equal(created.status, 201, created.text);
      assert.equal(await movieStatus(writerToken, 700_002), 200);
      const fresh = await bearerGet(`${server.url}/movies/new?year=2025&rating=9.9`, writerToken);
      assert.ok(titlesOf(fresh.text).includes(movie.title), fresh.text);
      const search = await bearerGet(`${server.url}/movies?q=read%20your`, writerToken);
      assert.match(search.text, /Read your writes/);

      // Another user reads the replica, which has not replayed it yet.
      assert.equal(await movieStatus(otherToken, 700_002), 404);
      const stale = await bearerGet(`${server.url}/movies/new?year=2025&rating=9.9`, otherToken);
      assert.equal(stale.status, 200, stale.text);
      assert.ok(!titlesOf(stale.text).includes(movie.title), stale.text);
    } finally {
      await query(standbyDsn(), 'select pg_wal_replay_resume()');
    }
    // Once the replica replays, everyone sees both movies.
    await waitFor('the replica to serve the new movies', async () => {
      return (
        (await movieStatus(otherToken, 700_001)) === 200 &&
        (await movieStatus(otherToken, 700_002)) === 200
      );
    });
  });

  it("reports the replica's pool and times its queries in /metrics, beside the primary's", async () => {
    const scrape = async () => parseExposition(await (await fetch(metricsUrl)).text());
    const replica = { pool: 'replica-1', operation: 'select' };
    const before = valueOf(await scrape(), 'myapi_db_query_duration_seconds_count', replica);
    for (let id = 1; id <= 10; id++) assert.equal(await movieStatus(otherToken, id), 200);
    const now = await scrape();
    const timed = valueOf(now, 'myapi_db_query_duration_seconds_count', replica) - before;
    assert.ok(timed >= 10, `${timed} replica selects timed for 10 reads`);
    for (const pool of ['primary', 'replica-1']) {
      assert.ok(valueOf(now, 'myapi_db_pool_connections', { pool }) >= 1, pool);
      assert.equal(valueOf(now, 'myapi_db_pool_waiting_requests', { pool }), 0, pool);
    }
    // A label names the replica by its place in the list, never by its DSN.
    const pools = new Set(now.map((sample) => sample.labels.pool).filter(Boolean));
    assert.deepEqual([...pools].sort(), ['primary', 'replica-1']);
  });

  it('serves reads from the primary, with no error, when the replica stops', async () => {
    const standby = topology.standby;
    assert.ok(standby !== undefined);
    await standby.stop('immediate');
    try {
      const answers = await Promise.all([
        ...Array.from({ length: 20 }, (_, i) =>
          bearerGet(`${server.url}/movies/${(i % 5) + 1}`, otherToken),
        ),
        bearerGet(`${server.url}/movies/new?year=1990&rating=8`, otherToken),
        bearerGet(`${server.url}/movies?q=the`, otherToken),
      ]);
      for (const answer of answers)
        assert.ok(answer.status < 500, `${answer.status} ${answer.text}`);
      assert.equal(answers.at(-1)?.status, 200);
      // A movie only the primary has (the replica is down) is read from it.
      await query(
        topology.primary.dsn(),
        "insert into myapi.movies (movie_id, title, released, rating) values (700003, 'Primary only', 2024, 5)",
      );
      assert.equal(await movieStatus(otherToken, 700_003), 200);
    } finally {
      await standby.start();
    }
    await waitFor(
      'the replica to come back',
      async () => (await replayed()) && (await movieStatus(otherToken, 700_003)) === 200,
    );
  });

  it('keeps serving reads from the replica when the primary stops; writes and logins get a quick 503', async () => {
    await topology.primary.stop('immediate');
    for (const path of ['/movies/1', '/movies/new?year=1990&rating=8', '/movies?q=the']) {
      const answer = await bearerGet(`${server.url}${path}`, otherToken);
      assert.equal(answer.status, 200, `${path}: ${answer.text}`);
    }
    const started = Date.now();
    const write = await bearerSend('POST', `${server.url}/movies`, writerToken, {
      movie_id: 700_004,
      title: 'Nowhere to go',
      released: 2020,
      rating: 5,
    });
    assert.equal(write.status, 503, write.text);
    assert.ok(Number(write.headers.get('retry-after')) > 0);
    const login = await fetch(`${server.url}/token`, {
      method: 'POST',
      body: new URLSearchParams({
        username: 'other@replicas.test',
        password: 'pw-other@replicas.test-long-enough',
      }),
    });
    assert.equal(login.status, 503, await login.text());
    assert.ok(Number(login.headers.get('retry-after')) > 0);
    // Each waits at most PgBouncer's query_wait_timeout (2 s here), not its default 120 s.
    const elapsed = Date.now() - started;
    assert.ok(elapsed < scaled(6000), `the write and the login took ${elapsed} ms to fail`);
  });
});

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
