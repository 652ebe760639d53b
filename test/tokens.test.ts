import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import type { Token } from '../src/schemas/auth.js';
import { createTestApp, describeEachDatabase, type TestApp } from './support/databases.js';
import {
  ADMIN,
  adminAuthorization,
  createUser,
  form,
  loginTokens,
  seedTutorial,
  tokenRequest,
  USER,
  ALL_SCOPES,
  USER_SCOPES,
} from './support/http.js';
import { SCOPE_DESCRIPTIONS } from '../src/services/scopes.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const PASSWORD = 'tokens test passphrase';
const REUSE_MESSAGE = 'refresh token reused: login revoked (suspected token theft)';

function claimsOf(token: string): Record<string, unknown> {
  const [, payload] = token.split('.');
  return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>;
}

interface OAuthBody {
  error?: string;
  error_description?: string;
  detail?: string;
  status?: number;
  scope?: string;
}

let serial = 0;

describeEachDatabase('tokens', (kind) => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp(kind);
    await seedTutorial(t);
    await adminAuthorization(t); // creates ADMIN
  });
  after(async () => {
    await t.close();
  });

  /** A fresh regular user (or superuser), so no two tests share logins or throttle counters. */
  const newUser = async (label: string, is_superuser = false) => {
    serial += 1;
    const email = `${label}-${serial}@tokens.myapi.com`;
    const user = await createUser(t, {
      name: `${label} ${serial}`,
      email,
      password: PASSWORD,
      is_superuser,
    });
    return { ...user, password: PASSWORD };
  };
  const loginAs = (user: { email: string; password: string }, scope?: string) =>
    loginTokens(t.app, user.email, user.password, scope);
  const refresh = (refreshToken: string, scope?: string) =>
    tokenRequest(t.app, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      ...(scope === undefined ? {} : { scope }),
    });
  const get = (url: string, accessToken?: string) =>
    t.app.inject({
      method: 'GET',
      url,
      headers: accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` },
    });
  const revoke = (fields: Record<string, string>) =>
    t.app.inject({ method: 'POST', url: '/token/revoke', ...form(fields) });
  const patchUser = async (userId: number, body: Record<string, unknown>) =>
    t.app.inject({
      method: 'PATCH',
      url: `/users/${userId}`,
      headers: { authorization: await adminAuthorization(t) },
      payload: body,
    });

  const assertOAuthError = (
    response: Awaited<ReturnType<typeof get>>,
    status: number,
    error: string,
  ) => {
    assert.equal(response.statusCode, status, response.body);
    // RFC 6749 section 5.2: application/json, which OAuth2 clients require, with the problem
    // document's members (`detail` for FastAPI-style clients).
    assert.equal(response.headers['content-type'], 'application/json; charset=utf-8');
    const body = response.json<OAuthBody>();
    assert.equal(body.detail, body.error_description);
    assert.equal(body.status, status);
    assert.equal(body.error, error, response.body);
    assert.equal(typeof body.error_description, 'string');
    assert.notEqual(body.error_description, '');
    assert.equal('access_token' in body, false);
    assert.equal('refresh_token' in body, false);
    return body;
  };
  const assertWorks = async (accessToken: string, url = '/movies/1') => {
    const response = await get(url, accessToken);
    assert.equal(response.statusCode, 200, `${url}: ${response.body}`);
  };
  const assertInvalidToken = async (accessToken: string, url = '/movies/1') => {
    const response = await get(url, accessToken);
    assert.equal(response.statusCode, 401, `${url}: ${response.body}`);
    assert.match(String(response.headers['www-authenticate']), /^Bearer error="invalid_token"/);
  };
  const assertInsufficientScope = async (accessToken: string, url: string, scope: string) => {
    const response = await get(url, accessToken);
    assert.equal(response.statusCode, 403, `${url}: ${response.body}`);
    assert.match(
      String(response.headers['www-authenticate']),
      new RegExp(`^Bearer error="insufficient_scope", scope="${scope}"`),
    );
    const body = response.json<OAuthBody>();
    assert.equal(body.error, 'insufficient_scope');
    assert.equal(body.scope, scope);
  };
  const assertRefreshRefused = async (refreshToken: string) => {
    assertOAuthError(await refresh(refreshToken), 400, 'invalid_grant');
  };

  describe('the password grant', () => {
    it('returns an access token, its lifetime, an opaque refresh token and the scope, not to be cached', async () => {
      const response = await tokenRequest(t.app, {
        username: USER.email,
        password: USER.password,
      });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers['cache-control'], 'no-store');
      const body = response.json<Token>();
      assert.deepEqual(Object.keys(body).sort(), [
        'access_token',
        'expires_in',
        'refresh_token',
        'scope',
        'token_type',
      ]);
      assert.equal(body.token_type, 'bearer');
      assert.equal(body.expires_in, 3600);
      assert.equal(body.scope, USER_SCOPES);
      // Opaque: 256 random bits in base64url, not a JWT (no dots, nothing to decode).
      assert.match(body.refresh_token, BASE64URL);
      assert.ok(body.refresh_token.length >= 43, body.refresh_token);
      assert.equal(body.refresh_token.includes('.'), false);
      assert.notEqual(body.refresh_token, body.access_token);

      const claims = claimsOf(body.access_token);
      assert.match(String(claims.sub), /^[1-9][0-9]*$/);
      assert.match(String(claims.sid), UUID);
      assert.equal(claims.scope, USER_SCOPES);
      assert.equal(claims.iss, 'myapi');
      assert.equal(claims.aud, 'myapi');
      await assertWorks(body.access_token);
    });

    it('starts a separate login (sid) for every password grant', async () => {
      const first = await loginTokens(t.app);
      const second = await loginTokens(t.app);
      assert.notEqual(claimsOf(first.access_token).sid, claimsOf(second.access_token).sid);
      assert.notEqual(first.refresh_token, second.refresh_token);
    });
  });

  describe('scopes', () => {
    it('gives a regular user movies:read and a superuser every scope by default', async () => {
      const user = await loginTokens(t.app);
      assert.equal(user.scope, USER_SCOPES);
      assert.equal(claimsOf(user.access_token).scope, USER_SCOPES);
      const admin = await loginTokens(t.app, ADMIN.email, ADMIN.password);
      assert.equal(admin.scope, ALL_SCOPES);
      assert.equal(claimsOf(admin.access_token).scope, ALL_SCOPES);
      await assertWorks(admin.access_token, '/users');
      await assertWorks(admin.access_token);
    });

    it("refuses a regular user's token on admin routes: 403 insufficient_scope naming the scope", async () => {
      const { access_token } = await loginTokens(t.app);
      await assertInsufficientScope(access_token, '/users', 'users:admin');
      // The token itself is fine: it is the scope that is missing.
      await assertWorks(access_token, '/users/me');
    });

    it('grants exactly the subset asked for: an admin with movies:read only cannot list users', async () => {
      const tokens = await loginTokens(t.app, ADMIN.email, ADMIN.password, 'movies:read');
      assert.equal(tokens.scope, 'movies:read');
      assert.equal(claimsOf(tokens.access_token).scope, 'movies:read');
      await assertInsufficientScope(tokens.access_token, '/users', 'users:admin');
      await assertWorks(tokens.access_token);
    });

    it('refuses the movies to a token without movies:read (an admin asking for users:admin only)', async () => {
      const tokens = await loginTokens(t.app, ADMIN.email, ADMIN.password, 'users:admin');
      assert.equal(tokens.scope, 'users:admin');
      await assertInsufficientScope(tokens.access_token, '/movies/1', 'movies:read');
      await assertWorks(tokens.access_token, '/users');
    });

    it('answers an unknown scope with 400 invalid_scope', async () => {
      const response = await tokenRequest(t.app, {
        username: USER.email,
        password: USER.password,
        scope: 'movies:read movies:delete',
      });
      const body = assertOAuthError(response, 400, 'invalid_scope');
      assert.match(String(body.error_description), /movies:delete/);
    });

    it('refuses scope escalation: a regular user asking for users:admin or movies:write gets invalid_scope', async () => {
      for (const scope of ['users:admin', 'movies:write', 'movies:read users:admin', ALL_SCOPES]) {
        const response = await tokenRequest(t.app, {
          username: USER.email,
          password: USER.password,
          scope,
        });
        const body = assertOAuthError(response, 400, 'invalid_scope');
        assert.match(String(body.error_description), /(users:admin|movies:write)/, scope);
      }
    });
  });

  describe('the refresh grant', () => {
    it('exchanges a refresh token for new tokens that work, in the same login', async () => {
      const user = await newUser('rotate');
      const first = await loginAs(user);
      const response = await refresh(first.refresh_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers['cache-control'], 'no-store');
      const second = response.json<Token>();
      assert.equal(second.token_type, 'bearer');
      assert.equal(second.expires_in, 3600);
      assert.equal(second.scope, USER_SCOPES);
      assert.notEqual(second.access_token, first.access_token);
      assert.notEqual(second.refresh_token, first.refresh_token);
      assert.match(second.refresh_token, BASE64URL);
      const claims = claimsOf(second.access_token);
      assert.equal(claims.sid, claimsOf(first.access_token).sid);
      assert.equal(claims.sub, String(user.user_id));
      await assertWorks(second.access_token);
      // The new refresh token rotates in turn.
      const third = await refresh(second.refresh_token);
      assert.equal(third.statusCode, 200, third.body);
    });

    it('treats a reused refresh token as theft: invalid_grant, the whole login revoked, a warning logged', async () => {
      const user = await newUser('replay');
      const stolen = await loginAs(user);
      const other = await loginAs(user);
      const rotatedResponse = await refresh(stolen.refresh_token);
      assert.equal(rotatedResponse.statusCode, 200, rotatedResponse.body);
      const rotated = rotatedResponse.json<Token>();
      await assertWorks(stolen.access_token);
      await assertWorks(rotated.access_token);

      const logged = t.logs.lines.length;
      const replay = await refresh(stolen.refresh_token);
      assertOAuthError(replay, 400, 'invalid_grant');

      // Every token of that login is dead, at once (same process: no recheck wait).
      await assertInvalidToken(stolen.access_token);
      await assertInvalidToken(rotated.access_token);
      await assertRefreshRefused(rotated.refresh_token);

      // The user's other login goes on.
      await assertWorks(other.access_token);
      const otherRefresh = await refresh(other.refresh_token);
      assert.equal(otherRefresh.statusCode, 200, otherRefresh.body);
      await assertWorks(otherRefresh.json<Token>().access_token);

      const alerts = t.logs.lines.slice(logged).filter((line) => line.msg === REUSE_MESSAGE);
      assert.equal(alerts.length, 1, JSON.stringify(t.logs.lines.slice(logged)));
      const [alert] = alerts;
      assert.ok(alert);
      assert.equal(alert.level, 40, 'logged at warn');
      assert.equal(alert.event, 'refresh_token_reuse');
      assert.equal(alert.sessionId, claimsOf(stolen.access_token).sid);
      assert.equal(alert.userId, user.user_id);
      const raw = t.logs.raw.join('\n');
      for (const secret of [
        stolen.refresh_token,
        rotated.refresh_token,
        stolen.access_token,
        rotated.access_token,
        stolen.access_token.split('.')[2] ?? 'no-signature',
      ]) {
        assert.equal(raw.includes(secret), false, 'a token reached the log');
      }
    });

    it('lets only one of two simultaneous uses of a refresh token succeed', async () => {
      const user = await newUser('race');
      const tokens = await loginAs(user);
      const responses = await Promise.all([
        refresh(tokens.refresh_token),
        refresh(tokens.refresh_token),
      ]);
      const statuses = responses.map((response) => response.statusCode).sort();
      assert.deepEqual(statuses, [200, 400], responses.map((r) => r.body).join('\n'));
    });

    it('grants a narrower scope on refresh', async () => {
      const admin = await loginTokens(t.app, ADMIN.email, ADMIN.password);
      const response = await refresh(admin.refresh_token, 'movies:read');
      assert.equal(response.statusCode, 200, response.body);
      const narrowed = response.json<Token>();
      assert.equal(narrowed.scope, 'movies:read');
      assert.equal(claimsOf(narrowed.access_token).scope, 'movies:read');
      await assertWorks(narrowed.access_token);
      await assertInsufficientScope(narrowed.access_token, '/users', 'users:admin');
    });

    it('refuses a broader scope on refresh than the login was granted (invalid_scope)', async () => {
      for (const scope of ['users:admin', 'movies:read movies:write', 'movies:delete']) {
        // A login each: whether a refused refresh burns the token is the next test's matter.
        const login = await loginTokens(t.app, ADMIN.email, ADMIN.password, 'movies:read');
        const response = await refresh(login.refresh_token, scope);
        assertOAuthError(response, 400, 'invalid_scope');
      }
    });

    it('keeps the refresh token usable after a refresh refused for its scope', async () => {
      // RFC 6749 section 5.2: an error response issues nothing, so the client still holds
      // only its old refresh token; burning it would make the next honest use look like theft.
      const login = await loginTokens(t.app, ADMIN.email, ADMIN.password, 'movies:read');
      const logged = t.logs.lines.length;
      assertOAuthError(await refresh(login.refresh_token, 'users:admin'), 400, 'invalid_scope');
      const retry = await refresh(login.refresh_token);
      assert.equal(retry.statusCode, 200, retry.body);
      assert.equal(retry.json<Token>().scope, 'movies:read');
      await assertWorks(login.access_token);
      const alerts = t.logs.lines.slice(logged).filter((line) => line.msg === REUSE_MESSAGE);
      assert.deepEqual(alerts, [], 'an honest retry is no theft');
    });

    it("no longer yields users:admin once the user's superuser role is taken away", async () => {
      const admin2 = await newUser('demoted', true);
      const tokens = await loginAs(admin2);
      assert.equal(tokens.scope, ALL_SCOPES);
      await assertWorks(tokens.access_token, '/users');

      const demote = await patchUser(admin2.user_id, { is_superuser: false });
      assert.equal(demote.statusCode, 200, demote.body);
      assert.equal(demote.json<{ is_superuser: boolean }>().is_superuser, false);

      // The live token loses the scope at once (scopes follow the role on every request).
      await assertInsufficientScope(tokens.access_token, '/users', 'users:admin');
      await assertWorks(tokens.access_token);

      const response = await refresh(tokens.refresh_token);
      assert.equal(response.statusCode, 200, response.body);
      const refreshed = response.json<Token>();
      assert.equal(refreshed.scope, USER_SCOPES);
      assert.equal(claimsOf(refreshed.access_token).scope, USER_SCOPES);
      await assertInsufficientScope(refreshed.access_token, '/users', 'users:admin');

      assertOAuthError(await refresh(refreshed.refresh_token, 'users:admin'), 400, 'invalid_scope');
      const relogin = await tokenRequest(t.app, {
        username: admin2.email,
        password: admin2.password,
        scope: 'users:admin',
      });
      assertOAuthError(relogin, 400, 'invalid_scope');
    });
  });

  describe('attacks on tokens', () => {
    let tokens: Token;
    before(async () => {
      tokens = await loginAs(await newUser('attacks'));
    });

    it('refuses a refresh token used as an access token (401 invalid_token)', async () => {
      await assertInvalidToken(tokens.refresh_token);
    });

    it('refuses an access token used as a refresh token (400 invalid_grant)', async () => {
      await assertRefreshRefused(tokens.access_token);
      // And that attempt did not harm the login.
      await assertWorks(tokens.access_token);
    });

    it('refuses a forged or unknown refresh token (400 invalid_grant)', async () => {
      await assertRefreshRefused(randomBytes(32).toString('base64url'));
      // The right shape with one character changed.
      const last = tokens.refresh_token.at(-1) === 'A' ? 'B' : 'A';
      await assertRefreshRefused(`${tokens.refresh_token.slice(0, -1)}${last}`);
    });

    it('answers a refresh grant without a refresh token with 400 invalid_request', async () => {
      assertOAuthError(
        await tokenRequest(t.app, { grant_type: 'refresh_token' }),
        400,
        'invalid_request',
      );
      assertOAuthError(
        await tokenRequest(t.app, { grant_type: 'refresh_token', refresh_token: '' }),
        400,
        'invalid_request',
      );
    });

    it('answers an unsupported grant type with 400 unsupported_grant_type', async () => {
      for (const grant_type of ['authorization_code', 'client_credentials', 'REFRESH_TOKEN']) {
        const response = await tokenRequest(t.app, {
          grant_type,
          refresh_token: tokens.refresh_token,
          username: USER.email,
          password: USER.password,
        });
        assertOAuthError(response, 400, 'unsupported_grant_type');
      }
      // None of these consumed the refresh token.
      const response = await refresh(tokens.refresh_token);
      assert.equal(response.statusCode, 200, response.body);
    });
  });

  describe('revocation (POST /token/revoke)', () => {
    const assertRevoked = async (fields: Record<string, string>) => {
      const response = await revoke(fields);
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.body, '');
      assert.equal(response.headers['cache-control'], 'no-store');
    };

    it('revoking a refresh token ends its login: the refresh token and access token stop working', async () => {
      const user = await newUser('revoke-refresh');
      const tokens = await loginAs(user);
      const other = await loginAs(user);
      await assertWorks(tokens.access_token); // primes the per-process session state
      await assertRevoked({ token: tokens.refresh_token, token_type_hint: 'refresh_token' });
      await assertRefreshRefused(tokens.refresh_token);
      await assertInvalidToken(tokens.access_token);
      // Another login of the same user is untouched.
      await assertWorks(other.access_token);
      const response = await refresh(other.refresh_token);
      assert.equal(response.statusCode, 200, response.body);
    });

    it('revoking an access token ends its login: the access token and the refresh token stop working', async () => {
      const user = await newUser('revoke-access');
      const tokens = await loginAs(user);
      const other = await loginAs(user);
      await assertWorks(tokens.access_token);
      await assertRevoked({ token: tokens.access_token, token_type_hint: 'access_token' });
      await assertInvalidToken(tokens.access_token);
      await assertRefreshRefused(tokens.refresh_token);
      await assertWorks(other.access_token);
    });

    it('answers 200 for an unknown or already revoked token', async () => {
      await assertRevoked({ token: randomBytes(32).toString('base64url') });
      await assertRevoked({ token: 'not-a-token-at-all' });
      const tokens = await loginAs(await newUser('revoke-twice'));
      await assertRevoked({ token: tokens.refresh_token });
      await assertRevoked({ token: tokens.refresh_token });
      await assertRevoked({ token: tokens.access_token });
    });

    it('treats token_type_hint as a hint only: a wrong one still revokes', async () => {
      const user = await newUser('revoke-hint');
      const byRefresh = await loginAs(user);
      await assertWorks(byRefresh.access_token);
      await assertRevoked({ token: byRefresh.refresh_token, token_type_hint: 'access_token' });
      await assertRefreshRefused(byRefresh.refresh_token);
      await assertInvalidToken(byRefresh.access_token);

      const byAccess = await loginAs(user);
      await assertWorks(byAccess.access_token);
      await assertRevoked({ token: byAccess.access_token, token_type_hint: 'refresh_token' });
      await assertInvalidToken(byAccess.access_token);
      await assertRefreshRefused(byAccess.refresh_token);

      const unknownHint = await loginAs(user);
      await assertRevoked({ token: unknownHint.refresh_token, token_type_hint: 'id_token' });
      await assertRefreshRefused(unknownHint.refresh_token);
    });

    it('answers a request without a token with 400 invalid_request', async () => {
      assertOAuthError(await revoke({}), 400, 'invalid_request');
      assertOAuthError(await revoke({ token_type_hint: 'refresh_token' }), 400, 'invalid_request');
    });
  });

  describe('account changes end logins', () => {
    it('disabling a user kills their live tokens at once and refuses their logins until re-enabled', async () => {
      const user = await newUser('disabled');
      const first = await loginAs(user);
      const second = await loginAs(user);
      await assertWorks(first.access_token); // primes the per-process session state
      await assertWorks(second.access_token);

      const disable = await patchUser(user.user_id, { is_active: false });
      assert.equal(disable.statusCode, 200, disable.body);
      assert.equal(disable.json<{ is_active: boolean }>().is_active, false);

      await assertInvalidToken(first.access_token);
      await assertRefreshRefused(first.refresh_token);
      const refused = await tokenRequest(t.app, {
        username: user.email,
        password: user.password,
      });
      const body = assertOAuthError(refused, 401, 'invalid_grant');
      assert.equal(body.error_description, 'This account is disabled');
      assert.equal(body.detail, 'This account is disabled');

      const enable = await patchUser(user.user_id, { is_active: true });
      assert.equal(enable.statusCode, 200, enable.body);
      const fresh = await loginAs(user);
      await assertWorks(fresh.access_token);

      // What was issued before the account was disabled stays dead.
      await assertInvalidToken(first.access_token);
      await assertInvalidToken(second.access_token);
      await assertRefreshRefused(second.refresh_token);
    });

    it('changing the password ends every login; only the new password logs in', async () => {
      const user = await newUser('password');
      const tokens = await loginAs(user);
      const other = await loginAs(user);
      await assertWorks(tokens.access_token);
      await assertWorks(other.access_token);
      const newPassword = 'an entirely new passphrase 42';

      const change = await t.app.inject({
        method: 'POST',
        url: '/users/me/password',
        headers: { authorization: `Bearer ${tokens.access_token}` },
        payload: { current_password: user.password, new_password: newPassword },
      });
      assert.equal(change.statusCode, 204, change.body);
      assert.equal(change.body, '');

      await assertInvalidToken(tokens.access_token, '/users/me');
      await assertInvalidToken(other.access_token);
      await assertRefreshRefused(tokens.refresh_token);
      await assertRefreshRefused(other.refresh_token);

      const fresh = await loginAs({ email: user.email, password: newPassword });
      await assertWorks(fresh.access_token);
      const old = await tokenRequest(t.app, { username: user.email, password: user.password });
      assertOAuthError(old, 401, 'invalid_grant');
    });

    it('refusing a password change (wrong current password, weak new one) leaves the logins alone', async () => {
      const user = await newUser('password-refused');
      const tokens = await loginAs(user);
      const change = (current_password: string, new_password: string) =>
        t.app.inject({
          method: 'POST',
          url: '/users/me/password',
          headers: { authorization: `Bearer ${tokens.access_token}` },
          payload: { current_password, new_password },
        });
      assert.equal(
        (await change('not the password', 'an entirely new passphrase 42')).statusCode,
        403,
      );
      assert.equal((await change(user.password, 'password')).statusCode, 422);
      await assertWorks(tokens.access_token);
      const response = await refresh(tokens.refresh_token);
      assert.equal(response.statusCode, 200, response.body);
    });
  });

  describe('expiry', () => {
    it('refuses a refresh token past its expiry with invalid_grant', async () => {
      const user = await newUser('expired');
      const expiring = await loginAs(user);
      const live = await loginAs(user);
      const sid = String(claimsOf(expiring.access_token).sid);
      // Test setup only: age this login's refresh token instead of waiting days.
      await t.database.db.execute(
        sql`update myapi.refresh_tokens set expires_at = now() - interval '1 second' where session_id = ${sid}`,
      );
      await assertRefreshRefused(expiring.refresh_token);
      // Only that token expired: the other login refreshes.
      const response = await refresh(live.refresh_token);
      assert.equal(response.statusCode, 200, response.body);
    });

    it('mints access tokens with the configured lifetime (token_expire_minutes)', async () => {
      const short = await createTestApp(kind, { tokenExpireMinutes: 7 });
      try {
        await createUser(short, USER);
        const tokens = await loginTokens(short.app);
        assert.equal(tokens.expires_in, 7 * 60);
        const claims = claimsOf(tokens.access_token);
        assert.equal(Number(claims.exp) - Number(claims.iat), 7 * 60);
        const works = await short.app.inject({
          method: 'GET',
          url: '/users/me',
          headers: { authorization: `Bearer ${tokens.access_token}` },
        });
        assert.equal(works.statusCode, 200, works.body);

        const response = await short.app.inject({
          method: 'POST',
          url: '/token',
          ...form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
        });
        assert.equal(response.statusCode, 200, response.body);
        const refreshed = response.json<Token>();
        assert.equal(refreshed.expires_in, 7 * 60);
        const again = claimsOf(refreshed.access_token);
        assert.equal(Number(again.exp) - Number(again.iat), 7 * 60);
      } finally {
        await short.close();
      }
    });
  });

  describe('OpenAPI', () => {
    interface Operation {
      security?: Record<string, string[]>[];
      responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
    }
    interface OpenApi {
      components: {
        securitySchemes: Record<
          string,
          {
            type: string;
            scheme?: string;
            description?: string;
            flows: Record<
              string,
              { tokenUrl: string; refreshUrl?: string; scopes: Record<string, string> }
            >;
          }
        >;
      };
      paths: Record<string, Record<string, Operation>>;
    }
    let doc: OpenApi;
    before(async () => {
      const response = await get('/openapi.json');
      assert.equal(response.statusCode, 200);
      doc = response.json<OpenApi>();
    });

    it('describes the OAuth2 password flow with its token and refresh URLs and the three scopes', () => {
      const scheme = doc.components.securitySchemes.OAuth2PasswordBearer;
      assert.ok(scheme);
      assert.equal(scheme.type, 'oauth2');
      assert.deepEqual(Object.keys(scheme.flows), ['password']);
      const password = scheme.flows.password;
      assert.ok(password);
      assert.equal(password.tokenUrl, '/token');
      assert.equal(password.refreshUrl, '/token');
      // Every registered service's scopes, movies' and users' first (services/registry.ts).
      assert.deepEqual(password.scopes, SCOPE_DESCRIPTIONS);
      assert.deepEqual(Object.entries(password.scopes).slice(0, 3), [
        ['movies:read', 'Read movies'],
        ['movies:write', 'Add, change and delete movies'],
        ['users:admin', 'Manage user accounts'],
      ]);
    });

    it('offers a bearer token box beside the password flow: a personal access token or any access token', () => {
      const scheme = doc.components.securitySchemes.HTTPBearer;
      assert.ok(scheme);
      const { description, ...rest } = scheme;
      assert.deepEqual(rest, { type: 'http', scheme: 'bearer' });
      assert.match(String(description), /personal access token \(`myapi_pat_\.\.\.`/);
      assert.match(String(description), /any access token/);
    });

    it('states the scopes each route needs, and takes a pasted bearer token instead', () => {
      const security = (path: string, method = 'get') => doc.paths[path]?.[method]?.security;
      // Alternatives: the password flow's token with the scopes, or a pasted bearer token.
      const either = (...scopes: string[]) => [
        { OAuth2PasswordBearer: scopes },
        { HTTPBearer: [] },
      ];
      assert.deepEqual(security('/users'), either('users:admin'));
      assert.deepEqual(security('/users/{user_id}', 'patch'), either('users:admin'));
      assert.deepEqual(security('/movies/new'), either('movies:read'));
      assert.deepEqual(security('/movies/{movie_id}'), either('movies:read'));
      assert.deepEqual(security('/movies/{movie_id}', 'delete'), either('movies:write'));
      assert.deepEqual(security('/users/me'), either());
      assert.deepEqual(security('/users/me/password', 'post'), either());
      assert.deepEqual(security('/users/me/tokens', 'post'), either());
      assert.deepEqual(security('/token/introspect', 'post'), either('users:admin'));
      // Every protected operation offers both, whatever its router.
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const [method, operation] of Object.entries(item)) {
          if (operation.security === undefined) continue;
          assert.deepEqual(
            operation.security.map((requirement) => Object.keys(requirement)),
            [['OAuth2PasswordBearer'], ['HTTPBearer']],
            `${method} ${path}`,
          );
          assert.deepEqual(operation.security[1], { HTTPBearer: [] }, `${method} ${path}`);
        }
      }
      // The token endpoints are where a client gets credentials: they need none.
      assert.equal(security('/token', 'post'), undefined);
      assert.equal(security('/token/revoke', 'post'), undefined);
    });

    it("documents the token endpoints' OAuth2 errors as application/json problems (RFC 6749 section 5.2)", () => {
      const media = (path: string, status: string) => {
        const content = doc.paths[path]?.post?.responses[status]?.content ?? {};
        for (const { schema } of Object.values(content)) {
          assert.deepEqual(schema, { $ref: '#/components/schemas/Problem' }, `${path} ${status}`);
        }
        return Object.keys(content).sort();
      };
      const json = ['application/json'];
      const problem = ['application/problem+json'];
      // A 400 is OAuth2's (invalid_request...) or a body that does not parse (a problem).
      const either = [...json, ...problem];
      assert.deepEqual(media('/token', '400'), either);
      assert.deepEqual(media('/token', '401'), json);
      assert.deepEqual(media('/token', '429'), json);
      assert.deepEqual(media('/token', '503'), problem);
      assert.deepEqual(media('/token', '415'), problem);
      assert.deepEqual(media('/token/revoke', '400'), either);
      assert.deepEqual(media('/token/revoke', '503'), problem);
      assert.deepEqual(media('/token/introspect', '400'), either);
      // The introspection caller's own bearer token is RFC 6750's, answered as a problem.
      assert.deepEqual(media('/token/introspect', '401'), problem);
      assert.deepEqual(media('/token/introspect', '403'), problem);
      assert.deepEqual(media('/users/me/password', '429'), problem);
    });
  });
});
