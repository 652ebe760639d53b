import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { accountOptions, createServices } from '../src/services/index.js';
import { appOn, type AppOnDatabase } from './support/apps.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { USER } from './support/http.js';
import { listening, type Client } from './support/listening.js';

/**
 * POST /token/revoke checked against RFC 7009 point by point, over a real socket. Each test
 * names the section it checks.
 */
describeEachDatabase('token revocation (RFC 7009)', (kind) => {
  let t: TestDatabase;
  let server: AppOnDatabase;
  let http: Client;

  const revoke = (form: Record<string, string>) => http.request('POST', '/token/revoke', { form });
  const pair = () => http.login(USER.email, USER.password);
  const refresh = (refreshToken: string) =>
    http.token({ grant_type: 'refresh_token', refresh_token: refreshToken });

  before(async () => {
    t = await createTestDatabase(kind);
    const services = createServices(t.database, { accounts: accountOptions(t.settings) });
    await services.movies.seedDemo();
    await services.users.createUser(USER);
    server = await appOn(t);
    http = await listening(server.app);
  });
  after(async () => {
    await server.app.close();
    await t.close();
  });

  it('2.1: takes a form with token and token_type_hint; 2.2: answers 200 with no content to keep', async () => {
    const tokens = await pair();
    const answer = await revoke({ token: tokens.refresh_token, token_type_hint: 'refresh_token' });
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '', 'the client ignores the body: none is sent');
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    assert.equal((await refresh(tokens.refresh_token)).body.error, 'invalid_grant');
  });

  it('2.1: revoking a refresh token also ends the access tokens of the same grant', async () => {
    const tokens = await pair();
    assert.equal((await http.movie(tokens.access_token)).status, 200);
    assert.equal((await revoke({ token: tokens.refresh_token })).status, 200);
    const refused = await http.movie(tokens.access_token);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.detail, 'Token has been revoked');
  });

  it('2.1: revoking an access token ends its refresh token too (this server’s choice, allowed)', async () => {
    const tokens = await pair();
    assert.equal(
      (await revoke({ token: tokens.access_token, token_type_hint: 'access_token' })).status,
      200,
    );
    assert.equal((await http.movie(tokens.access_token)).status, 401);
    const refreshed = await refresh(tokens.refresh_token);
    assert.equal(refreshed.status, 400);
    assert.equal(refreshed.body.error, 'invalid_grant');
  });

  it('2.1: a wrong or unknown hint does not stop the search across token types', async () => {
    const wrong = await pair();
    assert.equal(
      (await revoke({ token: wrong.refresh_token, token_type_hint: 'access_token' })).status,
      200,
    );
    assert.equal((await refresh(wrong.refresh_token)).status, 400);
    const wrongAccess = await pair();
    assert.equal(
      (await revoke({ token: wrongAccess.access_token, token_type_hint: 'refresh_token' })).status,
      200,
    );
    assert.equal((await http.movie(wrongAccess.access_token)).status, 401);
    const unknown = await pair();
    assert.equal(
      (await revoke({ token: unknown.access_token, token_type_hint: 'id_token' })).status,
      200,
    );
    assert.equal((await http.movie(unknown.access_token)).status, 401);
  });

  it('2.2: answers 200 for invalid, unknown, already revoked and foreign tokens', async () => {
    const tokens = await pair();
    assert.equal((await revoke({ token: tokens.refresh_token })).status, 200);
    for (const token of [
      tokens.refresh_token,
      tokens.access_token,
      'unknown',
      '',
      'a.b.c',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl',
      'myapi_pat_not-a-real-one',
      'x'.repeat(4096),
    ]) {
      const answer = await revoke({ token, token_type_hint: 'refresh_token' });
      assert.equal(answer.status, 200, `${token.slice(0, 40)}: ${answer.text}`);
    }
  });

  it('2.2.1: errors are RFC 6749 section 5.2 JSON: a missing or repeated parameter is invalid_request', async () => {
    const missing = await revoke({ token_type_hint: 'access_token' });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error, 'invalid_request');
    assert.equal(typeof missing.body.error_description, 'string');
    assert.equal(missing.headers.get('content-type'), 'application/json; charset=utf-8');

    const repeated = await http.request('POST', '/token/revoke', {
      form: { token: 'a' },
    });
    assert.equal(repeated.status, 200);
    const twice = await fetch(`${http.url}/token/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=a&token=b',
    });
    assert.equal(twice.status, 400);
    assert.equal(((await twice.json()) as { error: string }).error, 'invalid_request');
  });

  it('2.1: is a POST endpoint only', async () => {
    const tokens = await pair();
    const get = await http.request('GET', `/token/revoke?token=${tokens.access_token}`);
    assert.notEqual(get.status, 200);
    assert.equal((await http.movie(tokens.access_token)).status, 200, 'a GET revokes nothing');
  });
});
