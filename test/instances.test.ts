import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  postToken,
  runCli,
  startServer,
  tempDir,
  TEST_TIMEOUT_MS,
  type Server,
} from './support/process.js';
import {
  bearerGet,
  bearerSend,
  cli,
  msUntilStatus,
  newUser,
  TOKEN_KEY,
  tokenFor,
} from './support/scale_out.js';
import { startTopology, type Topology } from './support/topology.js';

/**
 * Separate `myapi serve` processes (not workers of one) on one private database through
 * PgBouncer in transaction mode, with no direct LISTEN connection: the worst case, where a change
 * made through one instance reaches the others only by their recheck interval. A revoked token,
 * a deactivated user and a demotion must take effect on every instance within
 * MYAPI_TOKEN_RECHECK_SECONDS; the login throttle counts across instances; and `myapi migrate`
 * run twice at the same moment on a fresh database applies the migrations once.
 */
const RECHECK_SECONDS = 2;
/** The recheck interval plus the time of one request on a busy machine (scaled again later). */
const WITHIN_MS = RECHECK_SECONDS * 1000 + 3000;

describe('several myapi instances on one database', { timeout: TEST_TIMEOUT_MS * 8 }, () => {
  let topology: Topology;
  let env: Record<string, string>;
  let cwd: string;
  let instances: Server[] = [];

  before(
    async () => {
      topology = await startTopology({ bouncer: true, poolSize: 10 });
      cwd = tempDir();
      env = {
        MYAPI_DATABASE__DSN: topology.bouncer?.dsn() ?? '',
        MYAPI_DATABASE__PREPARED_STATEMENTS: 'false',
        MYAPI_TOKEN_KEY: TOKEN_KEY,
        MYAPI_TOKEN_RECHECK_SECONDS: String(RECHECK_SECONDS),
      };
      await cli(['migrate'], cwd, env);
      await cli(['seed'], cwd, env);
      await newUser(cwd, env, 'root@instances.test', true);
      instances = await Promise.all([0, 1, 2].map(() => startServer(tempDir(), env)));
    },
    { timeout: TEST_TIMEOUT_MS * 2 },
  );
  after(async () => {
    await Promise.all(instances.filter((server) => server.alive).map((server) => server.stop()));
  });

  /** Every instance answers `path` with `status` for the token, within the bound. */
  async function everywhere(path: string, token: string, status: number): Promise<void> {
    await Promise.all(
      instances.map((server) => msUntilStatus(`${server.url}${path}`, token, status, WITHIN_MS)),
    );
  }

  it('runs as three processes on three ports', () => {
    assert.equal(new Set(instances.map((server) => server.url)).size, 3);
    assert.equal(new Set(instances.map((server) => server.pid)).size, 3);
  });

  it('a token revoked at one instance stops working at every instance', async () => {
    const [first] = instances as [Server];
    const user = await newUser(cwd, env, 'revoked@instances.test');
    const { access_token: token } = await tokenFor(first.url, user);
    // Every instance has checked the session and keeps its state for the recheck interval.
    for (const server of instances) {
      assert.equal((await bearerGet(`${server.url}/users/me`, token)).status, 200);
    }
    const revoked = await fetch(`${first.url}/token/revoke`, {
      method: 'POST',
      body: new URLSearchParams({ token }),
    });
    assert.equal(revoked.status, 200, await revoked.text());
    await everywhere('/users/me', token, 401);
  });

  it('a user deactivated and an admin demoted at one instance lose access at every instance', async () => {
    const [first] = instances as [Server];
    const root = { email: 'root@instances.test', password: 'pw-root@instances.test-long-enough' };
    const { access_token: rootToken } = await tokenFor(first.url, root);
    const user = await newUser(cwd, env, 'deactivated@instances.test');
    const editor = await newUser(cwd, env, 'demoted@instances.test', true);
    const { access_token: userToken } = await tokenFor(first.url, user);
    const { access_token: editorToken } = await tokenFor(first.url, editor);
    const movie = (id: number) => ({
      movie_id: id,
      title: `Edited ${id}`,
      released: 2001,
      rating: 7,
    });
    for (const [i, server] of instances.entries()) {
      assert.equal((await bearerGet(`${server.url}/users/me`, userToken)).status, 200);
      const created = await bearerSend('POST', `${server.url}/movies`, editorToken, movie(910 + i));
      assert.equal(created.status, 201, created.text);
    }
    const idOf = async (token: string) =>
      (JSON.parse((await bearerGet(`${first.url}/users/me`, token)).text) as { user_id: number })
        .user_id;
    const patch = async (token: string, changes: Record<string, boolean>) => {
      const answer = await bearerSend(
        'PATCH',
        `${first.url}/users/${await idOf(token)}`,
        rootToken,
        changes,
      );
      assert.equal(answer.status, 200, answer.text);
    };
    await patch(userToken, { is_active: false });
    await patch(editorToken, { is_superuser: false });
    await everywhere('/users/me', userToken, 401);
    // The demoted editor's token may still read, but no longer write, on any instance.
    await Promise.all(
      instances.map(async (server, i) => {
        const deadline = Date.now() + WITHIN_MS * 2;
        for (let id = 1000 * (i + 1); ; id++) {
          const answer = await bearerSend('POST', `${server.url}/movies`, editorToken, movie(id));
          if (answer.status === 403) break;
          assert.equal(answer.status, 201, answer.text);
          assert.ok(Date.now() < deadline, `${server.url} still lets a demoted user write`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.equal((await bearerGet(`${server.url}/movies/1`, editorToken)).status, 200);
      }),
    );
  });

  it('counts failed logins across instances', async () => {
    const user = await newUser(cwd, env, 'throttled@instances.test');
    // The pair (account, address) has five free failures: spread over the three instances,
    // they are counted together, so the sixth is refused by whichever instance gets it.
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = instances[attempt % 3] as Server;
      const answer = await postToken(server.url, user.email, 'wrong-password-guess');
      assert.equal(answer.status, 401, await answer.text());
    }
    for (const server of instances) {
      const answer = await postToken(server.url, user.email, 'wrong-password-guess');
      assert.equal(answer.status, 429, await answer.text());
      assert.ok(Number(answer.headers.get('retry-after')) >= 1);
    }
  });

  it('applies migrations once when `myapi migrate` runs twice at the same moment', async () => {
    await topology.createDatabase('fresh');
    const fresh = { ...env, MYAPI_DATABASE__DSN: topology.bouncer?.dsn('fresh') ?? '' };
    const runs = await Promise.all([
      runCli(['migrate'], cwd, fresh),
      runCli(['migrate'], cwd, fresh),
    ]);
    for (const { exit, proc } of runs) assert.equal(exit.code, 0, proc.show());
    const outputs = runs.map(({ proc }) => proc.stdout);
    assert.equal(
      outputs.filter((out) => /applied \d+ of \d+ migrations/.test(out)).length,
      1,
      outputs.join('\n'),
    );
    assert.equal(outputs.filter((out) => /is up to date/.test(out)).length, 1, outputs.join('\n'));
    // And the database works: seeding it through the other command finds the schema.
    assert.match(await cli(['seed'], cwd, fresh), /added \d+ movies/);
  });
});
