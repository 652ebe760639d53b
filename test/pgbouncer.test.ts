import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, tempDir, TEST_TIMEOUT_MS, type Server } from './support/process.js';
import {
  bearerGet,
  bearerSend,
  cli,
  msUntilStatus,
  newUser,
  TOKEN_KEY,
  tokenFor,
} from './support/scale_out.js';
import { query, startTopology, type Topology } from './support/topology.js';

/**
 * myapi through PgBouncer in transaction pooling mode (Debian's 1.18, which keeps no named
 * statement across transactions): the CLI and the server work unchanged with
 * MYAPI_DATABASE__PREPARED_STATEMENTS=false, and revocation reaches the server over a direct
 * LISTEN connection (MYAPI_DATABASE__LISTEN_DSN), or, without one, within the recheck interval.
 * A private primary and PgBouncer, started by this file.
 */
describe('myapi through PgBouncer (transaction pooling)', { timeout: TEST_TIMEOUT_MS * 6 }, () => {
  let topology: Topology;
  let env: Record<string, string>;
  let cwd: string;
  const servers: Server[] = [];

  before(
    async () => {
      topology = await startTopology({ bouncer: true, poolSize: 5 });
      cwd = tempDir();
      env = {
        MYAPI_DATABASE__DSN: topology.bouncer?.dsn() ?? '',
        MYAPI_DATABASE__PREPARED_STATEMENTS: 'false',
        MYAPI_TOKEN_KEY: TOKEN_KEY,
      };
    },
    { timeout: TEST_TIMEOUT_MS },
  );
  after(async () => {
    for (const server of servers) if (server.alive) await server.stop();
  });

  async function serve(extra: Record<string, string>): Promise<Server> {
    const server = await startServer(cwd, { ...env, ...extra });
    servers.push(server);
    return server;
  }

  it('migrates, seeds and creates users through PgBouncer with the CLI', async () => {
    const migrated = await cli(['migrate'], cwd, env);
    assert.match(migrated, /applied \d+ of \d+ migrations/);
    assert.match(await cli(['migrate'], cwd, env), /is up to date/);
    assert.match(await cli(['seed'], cwd, env), /added \d+ movies/);
    await newUser(cwd, env, 'admin@bouncer.test', true);
    const listed = await cli(['users', 'list'], cwd, env);
    assert.match(listed, /admin@bouncer\.test/);
    // The statements went through PgBouncer, which counted their transactions.
    assert.ok(
      ((await topology.bouncer?.transactions()) ?? 0) > 0,
      'PgBouncer passed no transaction',
    );
  });

  it('serves logins, movie reads and writes through PgBouncer', async () => {
    const server = await serve({ MYAPI_DATABASE__LISTEN_DSN: topology.primary.dsn() });
    const admin = { email: 'admin@bouncer.test', password: 'pw-admin@bouncer.test-long-enough' };
    const { access_token: token } = await tokenFor(server.url, admin);
    // Enough parallel reads that every one of PgBouncer's five server connections serves some:
    // a named statement would be missing on all but the one that parsed it.
    const reads = await Promise.all(
      Array.from({ length: 60 }, (_, i) => bearerGet(`${server.url}/movies/${(i % 3) + 1}`, token)),
    );
    for (const read of reads) assert.ok([200, 404].includes(read.status), read.text);
    assert.ok(reads.some((read) => read.status === 200));
    const pages = await Promise.all(
      Array.from({ length: 30 }, () =>
        bearerGet(`${server.url}/movies/new?year=1990&rating=8`, token),
      ),
    );
    for (const page of pages) assert.equal(page.status, 200, page.text);
    const listed = await bearerGet(`${server.url}/movies?q=the&limit=5`, token);
    assert.equal(listed.status, 200, listed.text);

    const movie = { movie_id: 900_001, title: 'Pooled', released: 2020, rating: 7.5 };
    const created = await bearerSend('POST', `${server.url}/movies`, token, movie);
    assert.equal(created.status, 201, created.text);
    const etag = created.headers.get('etag') ?? '';
    const patched = await fetch(`${server.url}/movies/${movie.movie_id}`, {
      method: 'PATCH',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'if-match': etag,
      },
      body: JSON.stringify({ rating: 8 }),
    });
    assert.equal(patched.status, 200, await patched.text());
    const read = await bearerGet(`${server.url}/movies/${movie.movie_id}`, token);
    assert.equal(read.status, 200, read.text);
    assert.equal((JSON.parse(read.text) as { rating: number }).rating, 8);
    const kept = await query<{ rating: string }>(
      topology.primary.dsn(),
      'select rating::text from myapi.movies where movie_id = $1',
      [movie.movie_id],
    );
    assert.equal(kept[0]?.rating, '8.0');
  });

  it('hears a revocation at once over the direct LISTEN connection', async () => {
    // A recheck interval far longer than the test: only the notice can end the token in time.
    const server = await serve({
      MYAPI_DATABASE__LISTEN_DSN: topology.primary.dsn(),
      MYAPI_TOKEN_RECHECK_SECONDS: '300',
    });
    const user = await newUser(cwd, env, 'listen@bouncer.test');
    const { access_token: token } = await tokenFor(server.url, user);
    const me = `${server.url}/users/me`;
    assert.equal((await bearerGet(me, token)).status, 200);
    // Another process (the CLI) ends the user's logins: the server hears it through NOTIFY.
    assert.match(
      await cli(
        ['users', 'set-password', user.email, '--password', 'another-pw-long-enough'],
        cwd,
        env,
      ),
      /1 login ended/,
    );
    await msUntilStatus(me, token, 401, 5000);
  });

  it('without a direct LISTEN connection, a revocation still ends the token within the recheck interval', async () => {
    // The listener's default DSN is PgBouncer's, where LISTEN hears nothing reliably.
    const server = await serve({ MYAPI_TOKEN_RECHECK_SECONDS: '2' });
    const user = await newUser(cwd, env, 'recheck@bouncer.test');
    const { access_token: token } = await tokenFor(server.url, user);
    const me = `${server.url}/users/me`;
    assert.equal((await bearerGet(me, token)).status, 200);
    await cli(['users', 'deactivate', user.email], cwd, env);
    // Two seconds of trust, plus the time of a read on a loaded machine.
    await msUntilStatus(me, token, 401, 2000 + 3000);
  });
});
