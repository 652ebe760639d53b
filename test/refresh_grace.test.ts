import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { loadSettings } from '../src/backend/config.js';
import { accountOptions, createServices } from '../src/services/index.js';
import { appOn, type AppOnDatabase } from './support/apps.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { USER } from './support/http.js';
import { listening, type Answer, type Client, type TokenPair } from './support/listening.js';
import { delay } from './support/process.js';

/**
 * MYAPI_REFRESH_REUSE_SECONDS over a real socket: a refresh token presented again within the
 * interval after its use gets the same successor back (a client retrying after a lost answer);
 * after it, or with the default 0, a second use ends the login as before.
 */
describeEachDatabase('refresh token reuse interval', (kind) => {
  let t: TestDatabase;
  const servers: AppOnDatabase[] = [];
  let grace: Client;
  let short: Client;
  let strict: Client;

  const refresh = (client: Client, refreshToken: string) =>
    client.token({ grant_type: 'refresh_token', refresh_token: refreshToken });
  const pairOf = (answer: Answer) => {
    assert.equal(answer.status, 200, answer.text);
    return answer.body as unknown as TokenPair;
  };
  const serve = async (seconds: number) => {
    const server = await appOn(t, { refresh_reuse_seconds: seconds });
    servers.push(server);
    return listening(server.app);
  };

  before(async () => {
    t = await createTestDatabase(kind);
    const services = createServices(t.database, { accounts: accountOptions(t.settings) });
    await services.movies.seedDemo();
    await services.users.createUser(USER);
    grace = await serve(10);
    short = await serve(1);
    strict = await serve(0);
  });
  after(async () => {
    for (const server of servers) await server.app.close();
    await t.close();
  });

  it('gives a retry within the interval the same refresh token and a working access token', async () => {
    const first = await grace.login(USER.email, USER.password);
    const rotated = pairOf(await refresh(grace, first.refresh_token));
    const retried = pairOf(await refresh(grace, first.refresh_token));
    assert.equal(retried.refresh_token, rotated.refresh_token, 'the same successor');
    assert.notEqual(retried.refresh_token, first.refresh_token);
    assert.equal(retried.scope, rotated.scope);
    assert.equal((await grace.movie(retried.access_token)).status, 200);
    assert.equal(
      (await grace.movie(rotated.access_token)).status,
      200,
      'the first answer stays valid',
    );

    // The successor rotates once, as every refresh token.
    const next = pairOf(await refresh(grace, retried.refresh_token));
    assert.equal((await grace.movie(next.access_token)).status, 200);
  });

  it('treats the old token as a replay once its successor was used, and ends the login', async () => {
    const first = await grace.login(USER.email, USER.password);
    const rotated = pairOf(await refresh(grace, first.refresh_token));
    const next = pairOf(await refresh(grace, rotated.refresh_token));
    const replay = await refresh(grace, first.refresh_token);
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_grant');
    assert.equal(replay.body.error_description, 'Refresh token has already been used');
    assert.equal((await grace.movie(next.access_token)).status, 401, 'the login ended');
    assert.equal((await refresh(grace, next.refresh_token)).status, 400);
  });

  it('answers parallel refreshes of one token with one successor', async () => {
    const first = await grace.login(USER.email, USER.password);
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => refresh(grace, first.refresh_token)),
    );
    const successors = new Set(answers.map((answer) => pairOf(answer).refresh_token));
    assert.equal(successors.size, 1);
    const [successor] = successors;
    assert.equal((await refresh(grace, successor ?? '')).status, 200);
  });

  it('ends the login for a reuse after the interval', async () => {
    const first = await short.login(USER.email, USER.password);
    const rotated = pairOf(await refresh(short, first.refresh_token));
    await delay(1500);
    const late = await refresh(short, first.refresh_token);
    assert.equal(late.status, 400);
    assert.equal(late.body.error_description, 'Refresh token has already been used');
    assert.equal((await short.movie(rotated.access_token)).status, 401);
    assert.equal((await refresh(short, rotated.refresh_token)).status, 400);
  });

  it('keeps today’s behaviour with 0: any second use ends the login', async () => {
    const first = await strict.login(USER.email, USER.password);
    const rotated = pairOf(await refresh(strict, first.refresh_token));
    const again = await refresh(strict, first.refresh_token);
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
    assert.equal((await strict.movie(rotated.access_token)).status, 401);
  });

  it('gives nothing within the interval once the login was revoked', async () => {
    const first = await grace.login(USER.email, USER.password);
    const rotated = pairOf(await refresh(grace, first.refresh_token));
    const revoked = await grace.request('POST', '/token/revoke', {
      form: { token: rotated.access_token },
    });
    assert.equal(revoked.status, 200);
    const retried = await refresh(grace, first.refresh_token);
    assert.equal(retried.status, 400);
    assert.equal(retried.body.error, 'invalid_grant');
  });

  it('is a setting from 0 to 300 seconds, 0 by default', () => {
    const load = (value?: string) =>
      loadSettings({
        env: value === undefined ? {} : { MYAPI_REFRESH_REUSE_SECONDS: value },
        cwd: '/nonexistent',
      });
    assert.equal(load().settings.refresh_reuse_seconds, 0);
    assert.equal(load('10').settings.refresh_reuse_seconds, 10);
    assert.throws(() => load('301'), /MYAPI_REFRESH_REUSE_SECONDS/);
    assert.throws(() => load('-1'), /MYAPI_REFRESH_REUSE_SECONDS/);
  });
});
