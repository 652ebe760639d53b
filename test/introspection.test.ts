import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createSigner } from 'fast-jwt';
import { accountOptions, createServices } from '../src/services/index.js';
import { appOn, type AppOnDatabase } from './support/apps.js';
import {
  createTestDatabase,
  describeEachDatabase,
  TOKEN_KEY,
  type TestDatabase,
} from './support/databases.js';
import { ADMIN, ALL_SCOPES, USER, USER_SCOPES } from './support/http.js';
import { listening, type Answer, type Client, type TokenPair } from './support/listening.js';

function claimsOf(token: string): Record<string, unknown> {
  const [, payload] = token.split('.');
  return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>;
}

const INACTIVE = { active: false };

/**
 * RFC 7662 at POST /token/introspect, over a real socket: an admin's token may ask about any
 * token; an inactive one gets `{"active": false}` and nothing else, whatever the reason.
 */
describeEachDatabase('token introspection (RFC 7662)', (kind) => {
  let t: TestDatabase;
  let server: AppOnDatabase;
  let http: Client;
  let admin: string;
  let userId: number;

  const bearer = (token: string) => `Bearer ${token}`;
  const introspect = (token: string, extra: Record<string, string> = {}, authorization = admin) =>
    http.request('POST', '/token/introspect', { authorization, form: { token, ...extra } });
  const activeAnswer = async (token: string, extra: Record<string, string> = {}) => {
    const answer = await introspect(token, extra);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.active, true, answer.text);
    return answer.body;
  };
  const inactive = async (token: string, why: string) => {
    const answer = await introspect(token);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.body, INACTIVE, why);
  };
  const userPair = () => http.login(USER.email, USER.password);
  const personal = async (
    authorization: string,
    json: Record<string, unknown> = { name: 'pat' },
  ) => {
    const answer = await http.request<{ token: string; token_id: string; expires_at: string }>(
      'POST',
      '/users/me/tokens',
      { authorization, json },
    );
    assert.equal(answer.status, 201, answer.text);
    return answer.body;
  };

  before(async () => {
    t = await createTestDatabase(kind);
    const services = createServices(t.database, { accounts: accountOptions(t.settings) });
    await services.movies.seedDemo();
    userId = (await services.users.createUser(USER)).user_id;
    await services.users.createUser(ADMIN);
    server = await appOn(t, { access_tokens: { max_lifetime_days: 90, allow_no_expiry: true } });
    http = await listening(server.app);
    admin = bearer((await http.login(ADMIN.email, ADMIN.password)).access_token);
  });
  after(async () => {
    await server.app.close();
    await t.close();
  });

  it('is for admins: 401 without a token, 403 without users:admin', async () => {
    const { access_token } = await userPair();
    const anonymous = await http.request('POST', '/token/introspect', {
      form: { token: access_token },
    });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer');
    const user = await introspect(access_token, {}, bearer(access_token));
    assert.equal(user.status, 403);
    assert.equal(user.body.error, 'insufficient_scope');
    assert.equal(user.body.scope, 'users:admin');
  });

  it('describes an active access token with the standard members', async () => {
    const { access_token } = await userPair();
    const answer = await introspect(access_token);
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    const claims = claimsOf(access_token);
    assert.deepEqual(answer.body, {
      active: true,
      scope: USER_SCOPES,
      username: USER.email,
      token_type: 'Bearer',
      exp: claims.exp,
      iat: claims.iat,
      sub: String(userId),
      aud: claims.aud,
      iss: claims.iss,
      jti: claims.jti,
    });
  });

  it('describes an active refresh token and personal access token', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { refresh_token, access_token } = await userPair();
    const refresh = await activeAnswer(refresh_token, { token_type_hint: 'refresh_token' });
    assert.equal(refresh.token_type, 'refresh_token');
    assert.equal(refresh.scope, USER_SCOPES);
    assert.equal(refresh.username, USER.email);
    assert.equal(refresh.sub, String(userId));
    assert.equal(refresh.iss, 'myapi');
    assert.equal(refresh.aud, 'myapi');
    assert.ok(Number(refresh.iat) >= before - 5 && Number(refresh.iat) <= before + 60);
    const fourteenDays = 14 * 86_400;
    assert.ok(Math.abs(Number(refresh.exp) - (Number(refresh.iat) + fourteenDays)) < 60);

    const pat = await personal(bearer(access_token), { name: 'ci', expires_in_days: 5 });
    const described = await activeAnswer(pat.token, { token_type_hint: 'access_token' });
    assert.equal(described.token_type, 'Bearer');
    assert.equal(described.jti, pat.token_id);
    assert.equal(described.exp, Math.floor(Date.parse(pat.expires_at) / 1000));
    assert.equal(described.username, USER.email);
    assert.equal(described.sub, String(userId));

    const forever = await personal(bearer(access_token), {
      name: 'forever',
      expires_in_days: null,
    });
    const noExpiry = await activeAnswer(forever.token);
    assert.ok(!('exp' in noExpiry), 'a token without expiry has no exp');
  });

  it('ignores the hint, an unknown one included', async () => {
    const { access_token, refresh_token } = await userPair();
    await activeAnswer(access_token, { token_type_hint: 'refresh_token' });
    await activeAnswer(refresh_token, { token_type_hint: 'access_token' });
    await activeAnswer(access_token, { token_type_hint: 'something_else' });
  });

  it('answers only active=false for revoked, used, expired, unknown and malformed tokens', async () => {
    const first = await userPair();
    const rotated = await http.token({
      grant_type: 'refresh_token',
      refresh_token: first.refresh_token,
    });
    assert.equal(rotated.status, 200);
    await inactive(first.refresh_token, 'a used refresh token');
    const next = rotated.body as unknown as TokenPair;
    await activeAnswer(next.refresh_token);

    const revoked = await http.request('POST', '/token/revoke', {
      form: { token: next.access_token },
    });
    assert.equal(revoked.status, 200);
    await inactive(next.access_token, 'a revoked access token');
    await inactive(next.refresh_token, 'the refresh token of a revoked login');

    const { access_token } = await userPair();
    const pat = await personal(bearer(access_token));
    await http.request('DELETE', `/users/me/tokens/${pat.token_id}`, {
      authorization: bearer(access_token),
    });
    await inactive(pat.token, 'a revoked personal access token');

    // Signed with the right key and naming a live login, but past its exp.
    const live = claimsOf(access_token);
    const expired = createSigner({ key: TOKEN_KEY, algorithm: 'HS256' })({
      ...live,
      iat: Math.floor(Date.now() / 1000) - 7200,
      exp: Math.floor(Date.now() / 1000) - 3600,
    });
    await inactive(expired, 'an expired access token');
    const forged = createSigner({
      key: 'another-key-that-is-long-enough-0123456789',
      algorithm: 'HS256',
    })(live);
    await inactive(forged, 'a token signed with another key');

    const mistyped = `${pat.token.slice(0, -1)}${pat.token.endsWith('a') ? 'b' : 'a'}`;
    for (const [token, why] of [
      ['', 'an empty token'],
      ['not-a-token', 'an unknown refresh token'],
      ['a.b.c', 'a malformed JWT'],
      [mistyped, 'a personal access token with a wrong checksum'],
      [`myapi_pat_${'x'.repeat(60)}`, 'a malformed personal access token'],
    ] as const) {
      await inactive(token, why);
    }
  });

  it('answers active=false for every token of a disabled user, and narrows a demoted one', async () => {
    const second = await http.request<{ user_id: number }>('POST', '/users', {
      authorization: admin,
      json: { name: 'ops', email: 'ops@myapi.com', password: ADMIN.password, is_superuser: true },
    });
    assert.equal(second.status, 201, second.text);
    const pair = await http.login('ops@myapi.com', ADMIN.password);
    const pat = await personal(bearer(pair.access_token));
    assert.equal((await activeAnswer(pair.access_token)).scope, ALL_SCOPES);

    await http.request('PATCH', `/users/${second.body.user_id}`, {
      authorization: admin,
      json: { is_superuser: false },
    });
    for (const token of [pair.access_token, pair.refresh_token, pat.token]) {
      assert.equal((await activeAnswer(token)).scope, USER_SCOPES);
    }

    await http.request('PATCH', `/users/${second.body.user_id}`, {
      authorization: admin,
      json: { is_active: false },
    });
    await inactive(pair.access_token, "a disabled user's access token");
    await inactive(pair.refresh_token, "a disabled user's refresh token");
    await inactive(pat.token, "a disabled user's personal access token");
  });

  it('refuses a request without a token as RFC 6749 invalid_request', async () => {
    const missing: Answer = await http.request('POST', '/token/introspect', {
      authorization: admin,
      form: { token_type_hint: 'access_token' },
    });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error, 'invalid_request');
    assert.equal(typeof missing.body.error_description, 'string');
    assert.equal(missing.headers.get('content-type'), 'application/json; charset=utf-8');
  });
});
