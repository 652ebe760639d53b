import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { users as usersTable } from '../src/models/users.js';
import type { User } from '../src/schemas/users.js';
import { UserCRUD } from '../src/services/users.js';
import { createTestApp, describeEachDatabase, type TestApp } from './support/databases.js';
import {
  accounts,
  ADMIN,
  adminAuthorization,
  createUser,
  loginTokens,
  seedTutorial,
  tokenRequest,
  USER,
  ALL_SCOPES,
  USER_SCOPES,
} from './support/http.js';

/**
 * Accounts over HTTP: your own account (/users/me), the password policy on the HTTP paths, and
 * user administration (/users, users:admin), including the rule that one active superuser stays.
 */

const USER_KEYS = ['email', 'is_active', 'is_superuser', 'name', 'user_id'];
const STRONG = 'a long and unusual passphrase';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

interface Problem {
  status: number;
  detail: string;
  error?: string;
  scope?: string;
  errors?: { field: string; message: string }[];
}

function show(response: LightMyRequestResponse): string {
  return `${response.statusCode} ${response.body}`;
}

function problem(response: LightMyRequestResponse): Problem {
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
  return response.json<Problem>();
}

/** An error of POST /token: the same members, as RFC 6749's application/json. */
function oauthError(response: LightMyRequestResponse): Problem {
  assert.equal(response.headers['content-type'], 'application/json; charset=utf-8');
  return response.json<Problem>();
}

/** The Link header's next page, or undefined on the last page. */
function nextLink(response: LightMyRequestResponse): string | undefined {
  const link = response.headers.link;
  if (link === undefined) return undefined;
  const match = /^<([^>]+)>; rel="next"$/.exec(String(link));
  assert.ok(match?.[1] !== undefined, `malformed Link header: ${String(link)}`);
  return match[1];
}

function assertPublicUser(body: unknown): asserts body is User {
  assert.equal(typeof body, 'object');
  assert.deepEqual(Object.keys(body as object).sort(), USER_KEYS);
}

let serial = 0;

/** A regular user of its own (a fresh email), created through the services. */
async function newUser(t: TestApp, label: string, password = STRONG): Promise<User> {
  serial += 1;
  return createUser(t, {
    name: `${label} ${serial}`,
    email: `${label.replaceAll(' ', '.')}.${serial}@myapi.com`,
    password,
  });
}

async function bearer(t: TestApp, email: string, password = STRONG, scope?: string) {
  return `Bearer ${(await loginTokens(t.app, email, password, scope)).access_token}`;
}

function client(t: TestApp) {
  return (method: Method, url: string, authorization?: string, payload?: object) =>
    t.app.inject({
      method,
      url,
      headers: authorization === undefined ? {} : { authorization },
      ...(payload === undefined ? {} : { payload }),
    });
}

/** The active superusers, read from the database. */
async function activeSuperusers(t: TestApp): Promise<number[]> {
  const crud = new UserCRUD(t.database, usersTable);
  const rows = await crud.getAll();
  return rows
    .filter((row) => row.is_active && row.is_superuser)
    .map((row) => row.user_id)
    .sort((a, b) => a - b);
}

describeEachDatabase('users', (kind) => {
  let t: TestApp;
  let call: ReturnType<typeof client>;
  let admin: string;

  before(async () => {
    t = await createTestApp(kind);
    await seedTutorial(t);
    admin = await adminAuthorization(t);
    call = client(t);
  });
  after(async () => {
    await t.close();
  });

  describe('your own account', () => {
    it('GET /users/me returns the account for any valid token, and 401 without one', async () => {
      const me = await call('GET', '/users/me', await bearer(t, USER.email, USER.password));
      assert.equal(me.statusCode, 200, show(me));
      const body = me.json<User>();
      assertPublicUser(body);
      assert.equal(body.email, USER.email);
      assert.equal(body.name, USER.name);
      assert.equal(body.is_active, true);
      assert.equal(body.is_superuser, false);
      assert.ok(Number.isInteger(body.user_id) && body.user_id > 0);

      const readOnly = await bearer(t, USER.email, USER.password, 'movies:read');
      const again = await call('GET', '/users/me', readOnly);
      assert.equal(again.statusCode, 200, show(again));
      assert.deepEqual(again.json(), body);

      // A token carrying only users:admin (no movies:read) still reaches its own account.
      const adminOnly = await bearer(t, ADMIN.email, ADMIN.password, 'users:admin');
      const adminMe = await call('GET', '/users/me', adminOnly);
      assert.equal(adminMe.statusCode, 200, show(adminMe));
      assertPublicUser(adminMe.json());
      assert.equal(adminMe.json<User>().email, ADMIN.email);
      assert.equal(adminMe.json<User>().is_superuser, true);

      const anonymous = await call('GET', '/users/me');
      assert.equal(anonymous.statusCode, 401, show(anonymous));
      assert.equal(anonymous.headers['www-authenticate'], 'Bearer');
      assert.equal(problem(anonymous).detail, 'Not authenticated');
      assert.ok(!me.body.includes('hashed_password') && !me.body.includes('$argon2'));
    });

    it('PATCH /users/me renames (trimmed); a blank name or an extra field is 422 and changes nothing', async () => {
      const user = await newUser(t, 'renamer');
      const authorization = await bearer(t, user.email);

      const renamed = await call('PATCH', '/users/me', authorization, {
        name: '  Ada Lovelace  ',
      });
      assert.equal(renamed.statusCode, 200, show(renamed));
      assertPublicUser(renamed.json());
      assert.equal(renamed.json<User>().name, 'Ada Lovelace');
      const me = await call('GET', '/users/me', authorization);
      assert.equal(me.json<User>().name, 'Ada Lovelace');

      for (const payload of [{ name: '' }, { name: '   ' }, {}]) {
        const refused = await call('PATCH', '/users/me', authorization, payload);
        assert.equal(refused.statusCode, 422, `${JSON.stringify(payload)}: ${show(refused)}`);
        assert.equal(problem(refused).status, 422);
      }
      // A valid name beside a field the schema does not know: refused whole, the name unchanged.
      const extra = await call('PATCH', '/users/me', authorization, {
        name: 'Grace Hopper',
        nickname: 'grace',
      });
      assert.equal(extra.statusCode, 422, show(extra));
      assert.deepEqual(
        problem(extra).errors?.map((error) => error.field),
        ['body.nickname'],
      );
      const after = await call('GET', '/users/me', authorization);
      assert.equal(after.statusCode, 200, show(after));
      assert.deepEqual(after.json(), { ...user, name: 'Ada Lovelace' });
    });

    it('PATCH /users/me with an extra field (is_superuser: true, say) is 422 and changes nothing', async () => {
      const user = await newUser(t, 'escalator');
      const authorization = await bearer(t, user.email);
      for (const payload of [
        { name: 'Mallory', is_superuser: true },
        { is_superuser: true },
        { name: 'Mallory', is_active: false },
        { name: 'Mallory', email: 'admin@myapi.com' },
      ]) {
        const refused = await call('PATCH', '/users/me', authorization, payload);
        assert.equal(refused.statusCode, 422, `${JSON.stringify(payload)}: ${show(refused)}`);
        assert.equal(problem(refused).status, 422);
      }
      const after = await call('GET', '/users/me', authorization);
      assert.equal(after.statusCode, 200, show(after));
      assert.deepEqual(after.json(), user);
      // No escalation: a new login still gets only movies:read.
      const tokens = await loginTokens(t.app, user.email, STRONG);
      assert.equal(tokens.scope, USER_SCOPES);
    });
  });

  describe('changing your password', () => {
    it('a wrong current password is 403 and leaves the password unchanged', async () => {
      const user = await newUser(t, 'wrong current');
      const authorization = await bearer(t, user.email);
      const response = await call('POST', '/users/me/password', authorization, {
        current_password: 'not-the-current-password',
        new_password: 'another fine passphrase',
      });
      assert.equal(response.statusCode, 403, show(response));
      assert.match(problem(response).detail, /current password is incorrect/i);
      // The token still works (no logins ended) and the old password still logs in.
      assert.equal((await call('GET', '/users/me', authorization)).statusCode, 200);
      await loginTokens(t.app, user.email, STRONG);
      const refused = await tokenRequest(t.app, {
        username: user.email,
        password: 'another fine passphrase',
      });
      assert.equal(refused.statusCode, 401, show(refused));
    });

    it('guessing the current password with a stolen token is throttled like a login (429)', async () => {
      const user = await newUser(t, 'guessed current');
      const authorization = await bearer(t, user.email);
      const guess = (current: string) =>
        call('POST', '/users/me/password', authorization, {
          current_password: current,
          new_password: 'another fine passphrase',
        });
      for (let i = 0; i < 5; i++) {
        assert.equal((await guess(`guess-${i}`)).statusCode, 403);
      }
      const refused = await guess(STRONG);
      assert.equal(refused.statusCode, 429, show(refused));
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(problem(refused).error, 'slow_down');
      // The same counters as POST /token: the login from this address waits too.
      const login = await tokenRequest(t.app, { username: user.email, password: STRONG });
      assert.equal(login.statusCode, 429, show(login));
      assert.equal(oauthError(login).error, 'slow_down');
    });

    it('refuses a new password against each policy rule with a clear 422', async () => {
      const user = await createUser(t, {
        name: 'Pat Example Owner',
        email: 'password.owner@myapi.com',
        password: STRONG,
      });
      const authorization = await bearer(t, user.email);
      const cases: [string, RegExp][] = [
        ['short1!', /at least 8 characters/],
        ['😀'.repeat(7), /at least 8 characters/],
        ['qwerty123', /too common/],
        ['Password1', /too common/],
        ['PASSWORD', /too common/],
        ['password.owner@myapi.com', /must not be your email/],
        ['Password.Owner@MyAPI.com', /must not be your email/],
        ['password.owner', /must not be your email address or the part of it before the @/],
        ['pat example owner', /must not be your name/],
        ['x'.repeat(129), /at most 128 characters \(it has 129\)/],
        ['é'.repeat(129), /at most 128 characters \(it has 129\)/],
        ['x'.repeat(1000), /at most 128 characters/],
      ];
      for (const [password, message] of cases) {
        const response = await call('POST', '/users/me/password', authorization, {
          current_password: STRONG,
          new_password: password,
        });
        const label = `${password.slice(0, 20)} (${password.length})`;
        assert.equal(response.statusCode, 422, `${label}: ${show(response)}`);
        const body = problem(response);
        assert.match(body.detail, message, label);
        assert.ok(
          body.errors?.some((e) => e.field === 'new_password' && message.test(e.message)),
          `${label}: no field error for new_password: ${response.body}`,
        );
      }
      // None of them took: the token still works and the old password still logs in.
      assert.equal((await call('GET', '/users/me', authorization)).statusCode, 200);
      await loginTokens(t.app, user.email, STRONG);
    });

    it('accepts 8 emoji, 64 and 128 characters, ends every login, and never truncates', async () => {
      const user = await newUser(t, 'new password');
      let current = STRONG;
      let authorization = await bearer(t, user.email, current);
      const change = async (next: string) => {
        const response = await call('POST', '/users/me/password', authorization, {
          current_password: current,
          new_password: next,
        });
        assert.equal(response.statusCode, 204, `${next.length} units: ${show(response)}`);
        assert.equal(response.body, '');
        // Every login ended, this one included.
        const revoked = await call('GET', '/users/me', authorization);
        assert.equal(revoked.statusCode, 401, show(revoked));
        assert.equal(problem(revoked).detail, 'Token has been revoked');
        current = next;
        authorization = await bearer(t, user.email, current);
      };

      await change('😀'.repeat(8));
      const sixtyFour = 'correct horse battery staple '.repeat(3).slice(0, 64);
      assert.equal(sixtyFour.length, 64);
      await change(sixtyFour);
      const long = Array.from({ length: 128 }, (_, i) => String.fromCharCode(33 + (i % 90))).join(
        '',
      );
      assert.equal(long.length, 128);
      await change(long);
      // The whole 128 characters count: bcrypt-style truncation at 72 bytes would let this in.
      const prefix = await tokenRequest(t.app, {
        username: user.email,
        password: long.slice(0, 72),
      });
      assert.equal(prefix.statusCode, 401, show(prefix));
      const old = await tokenRequest(t.app, { username: user.email, password: sixtyFour });
      assert.equal(old.statusCode, 401, 'the old password still logs in');
      await loginTokens(t.app, user.email, long);

      // 129 is refused outright: nothing is silently cut to 128.
      const tooLong = await call('POST', '/users/me/password', authorization, {
        current_password: long,
        new_password: `${long}!`,
      });
      assert.equal(tooLong.statusCode, 422, show(tooLong));
      await loginTokens(t.app, user.email, long);
    });

    it("the tutorial's qwerty123 is refused over HTTP", async () => {
      const created = await call('POST', '/users', admin, {
        name: 'tutorial copy',
        email: 'tutorial.copy@myapi.com',
        password: USER.password,
      });
      assert.equal(created.statusCode, 422, show(created));
      assert.match(problem(created).detail, /too common/);
      const authorization = await bearer(t, USER.email, USER.password);
      const changed = await call('POST', '/users/me/password', authorization, {
        current_password: USER.password,
        new_password: 'qwerty123',
      });
      assert.equal(changed.statusCode, 422, show(changed));
      assert.match(problem(changed).detail, /too common/);
      assert.equal(
        (await accounts(t).users.findForLogin('tutorial.copy@myapi.com'))?.email,
        undefined,
      );
    });
  });

  describe('administration', () => {
    it('POST /users creates a user (201, Location, no hash) and refuses duplicates, weak passwords and bad emails', async () => {
      const created = await call('POST', '/users', admin, {
        name: '  Grace Hopper ',
        email: 'Grace.Hopper@MyAPI.com',
        password: STRONG,
      });
      assert.equal(created.statusCode, 201, show(created));
      const user = created.json<User>();
      assertPublicUser(user);
      assert.equal(created.headers.location, `/users/${user.user_id}`);
      assert.equal(user.name, 'Grace Hopper');
      assert.equal(user.email, 'grace.hopper@myapi.com');
      assert.equal(user.is_active, true);
      assert.equal(user.is_superuser, false);
      assert.ok(!created.body.includes('hashed_password') && !created.body.includes('$argon2'));
      assert.equal((await loginTokens(t.app, 'GRACE.HOPPER@myapi.com', STRONG)).scope, USER_SCOPES);

      const fetched = await call('GET', `/users/${user.user_id}`, admin);
      assert.equal(fetched.statusCode, 200, show(fetched));
      assert.deepEqual(fetched.json(), user);

      const duplicate = await call('POST', '/users', admin, {
        name: 'another grace',
        email: 'GRACE.hopper@myapi.COM',
        password: 'yet another passphrase',
      });
      assert.equal(duplicate.statusCode, 409, show(duplicate));
      assert.match(problem(duplicate).detail, /already exists/);

      const weak = await call('POST', '/users', admin, {
        name: 'weak',
        email: 'weak@myapi.com',
        password: 'x7#kq',
      });
      assert.equal(weak.statusCode, 422, show(weak));
      assert.match(problem(weak).detail, /at least 8 characters/);
      assert.deepEqual(problem(weak).errors, [
        { field: 'password', message: 'password must be at least 8 characters' },
      ]);

      const sameAsEmail = await call('POST', '/users', admin, {
        name: 'same',
        email: 'same.as.email@myapi.com',
        password: 'same.as.email@myapi.com',
      });
      assert.equal(sameAsEmail.statusCode, 422, show(sameAsEmail));
      assert.match(problem(sameAsEmail).detail, /must not be your email/);

      for (const email of ['not-an-email', 'two@@myapi.com', '']) {
        const invalid = await call('POST', '/users', admin, {
          name: 'x',
          email,
          password: STRONG,
        });
        assert.equal(invalid.statusCode, 422, `${email}: ${show(invalid)}`);
      }

      const { users } = accounts(t);
      for (const email of ['weak@myapi.com', 'same.as.email@myapi.com']) {
        assert.equal(await users.findForLogin(email), undefined, `${email} was created`);
      }
    });

    it('POST /users with an unknown field is 422, never silently dropped, and creates nobody', async () => {
      const extra = await call('POST', '/users', admin, {
        name: 'extra',
        email: 'extra@myapi.com',
        password: STRONG,
        hashed_password: '$argon2id$forged',
      });
      assert.equal(extra.statusCode, 422, show(extra));
      assert.equal(await accounts(t).users.findForLogin('extra@myapi.com'), undefined);
    });

    it('POST /users with is_superuser true creates an admin who gets users:admin at login', async () => {
      const created = await call('POST', '/users', admin, {
        name: 'second admin',
        email: 'second.admin@myapi.com',
        password: STRONG,
        is_superuser: true,
      });
      assert.equal(created.statusCode, 201, show(created));
      assert.equal(created.json<User>().is_superuser, true);
      const tokens = await loginTokens(t.app, 'second.admin@myapi.com', STRONG);
      assert.equal(tokens.scope, ALL_SCOPES);
      const listed = await call('GET', '/users', `Bearer ${tokens.access_token}`);
      assert.equal(listed.statusCode, 200, show(listed));
    });

    it('GET /users/{id} is 404 for an unknown user', async () => {
      const missing = await call('GET', '/users/999999', admin);
      assert.equal(missing.statusCode, 404, show(missing));
      assert.match(problem(missing).detail, /999999/);
      const invalid = await call('GET', '/users/abc', admin);
      assert.equal(invalid.statusCode, 422, show(invalid));
    });

    it('PATCH /users/{id} deactivates (logins refused, live tokens 401) and activates', async () => {
      const user = await newUser(t, 'disabled');
      const authorization = await bearer(t, user.email);
      assert.equal((await call('GET', '/users/me', authorization)).statusCode, 200);

      const off = await call('PATCH', `/users/${user.user_id}`, admin, { is_active: false });
      assert.equal(off.statusCode, 200, show(off));
      assert.deepEqual(off.json(), { ...user, is_active: false });
      const live = await call('GET', '/users/me', authorization);
      assert.equal(live.statusCode, 401, show(live));
      const refused = await tokenRequest(t.app, { username: user.email, password: STRONG });
      assert.equal(refused.statusCode, 401, show(refused));
      assert.equal(oauthError(refused).detail, 'This account is disabled');

      const on = await call('PATCH', `/users/${user.user_id}`, admin, { is_active: true });
      assert.equal(on.statusCode, 200, show(on));
      assert.deepEqual(on.json(), user);
      const fresh = await bearer(t, user.email);
      assert.equal((await call('GET', '/users/me', fresh)).statusCode, 200);
      // The logins that deactivation ended stay ended.
      assert.equal((await call('GET', '/users/me', authorization)).statusCode, 401);
    });

    it('PATCH /users/{id} promotes (next login gets movies:write users:admin) and demotes', async () => {
      const user = await newUser(t, 'promoted');
      const regular = await bearer(t, user.email);
      assert.equal((await call('GET', '/users', regular)).statusCode, 403);

      const up = await call('PATCH', `/users/${user.user_id}`, admin, { is_superuser: true });
      assert.equal(up.statusCode, 200, show(up));
      assert.deepEqual(up.json(), { ...user, is_superuser: true });
      const tokens = await loginTokens(t.app, user.email, STRONG);
      assert.equal(tokens.scope, ALL_SCOPES);
      const promoted = `Bearer ${tokens.access_token}`;
      assert.equal((await call('GET', '/users', promoted)).statusCode, 200);

      const down = await call('PATCH', `/users/${user.user_id}`, admin, { is_superuser: false });
      assert.equal(down.statusCode, 200, show(down));
      assert.deepEqual(down.json(), user);
      // The token from the superuser's login loses users:admin at once; the next login is regular.
      const stale = await call('GET', '/users', promoted);
      assert.equal(stale.statusCode, 403, show(stale));
      assert.equal(problem(stale).error, 'insufficient_scope');
      assert.equal((await loginTokens(t.app, user.email, STRONG)).scope, USER_SCOPES);
    });

    it('PATCH /users/{id} renames, and refuses an empty body, a blank name or an unknown field', async () => {
      const user = await newUser(t, 'renamed by admin');
      const renamed = await call('PATCH', `/users/${user.user_id}`, admin, {
        name: ' New Name ',
      });
      assert.equal(renamed.statusCode, 200, show(renamed));
      assert.equal(renamed.json<User>().name, 'New Name');
      for (const payload of [{}, { name: '' }, { name: '  ' }]) {
        const refused = await call('PATCH', `/users/${user.user_id}`, admin, payload);
        assert.equal(refused.statusCode, 422, `${JSON.stringify(payload)}: ${show(refused)}`);
      }
      const fetched = await call('GET', `/users/${user.user_id}`, admin);
      assert.deepEqual(fetched.json(), { ...user, name: 'New Name' });
      const missing = await call('PATCH', '/users/999999', admin, { is_active: false });
      assert.equal(missing.statusCode, 404, show(missing));
    });

    it('PATCH /users/{id} with an unknown field is 422 and changes nothing', async () => {
      const user = await newUser(t, 'unknown field');
      for (const payload of [
        { email: 'changed@myapi.com' },
        { name: 'Changed', email: 'changed@myapi.com' },
        { is_active: false, hashed_password: 'x' },
      ]) {
        const refused = await call('PATCH', `/users/${user.user_id}`, admin, payload);
        assert.equal(refused.statusCode, 422, `${JSON.stringify(payload)}: ${show(refused)}`);
      }
      const fetched = await call('GET', `/users/${user.user_id}`, admin);
      assert.deepEqual(fetched.json(), user);
    });

    it("DELETE /users/{id} is 204, then 404; the deleted user's live token gets 401", async () => {
      const user = await newUser(t, 'deleted');
      const authorization = await bearer(t, user.email);
      assert.equal((await call('GET', '/users/me', authorization)).statusCode, 200);

      const deleted = await call('DELETE', `/users/${user.user_id}`, admin);
      assert.equal(deleted.statusCode, 204, show(deleted));
      assert.equal(deleted.body, '');
      assert.equal((await call('GET', `/users/${user.user_id}`, admin)).statusCode, 404);
      assert.equal((await call('DELETE', `/users/${user.user_id}`, admin)).statusCode, 404);
      const live = await call('GET', '/users/me', authorization);
      assert.equal(live.statusCode, 401, show(live));
      const login = await tokenRequest(t.app, { username: user.email, password: STRONG });
      assert.equal(login.statusCode, 401, show(login));
    });

    it('a regular token on admin routes is 403 insufficient_scope, and changes nothing', async () => {
      const victim = await newUser(t, 'victim');
      const regular = await bearer(t, USER.email, USER.password);
      // An admin's token asked for movies:read only is no admin token either.
      const narrowed = await bearer(t, ADMIN.email, ADMIN.password, 'movies:read');
      const id = victim.user_id;
      for (const authorization of [regular, narrowed]) {
        for (const [method, url, payload] of [
          ['GET', '/users', undefined],
          ['POST', '/users', { name: 'sneaky', email: 'sneaky@myapi.com', password: STRONG }],
          ['GET', `/users/${id}`, undefined],
          ['PATCH', `/users/${id}`, { is_superuser: true }],
          ['DELETE', `/users/${id}`, undefined],
        ] as [Method, string, object | undefined][]) {
          const response = await call(method, url, authorization, payload);
          assert.equal(response.statusCode, 403, `${method} ${url}: ${show(response)}`);
          const body = problem(response);
          assert.equal(body.error, 'insufficient_scope');
          assert.equal(body.scope, 'users:admin');
          assert.match(
            String(response.headers['www-authenticate']),
            /^Bearer error="insufficient_scope", scope="users:admin"/,
          );
        }
      }
      const fetched = await call('GET', `/users/${id}`, admin);
      assert.deepEqual(fetched.json(), victim);
      assert.equal(await accounts(t).users.findForLogin('sneaky@myapi.com'), undefined);
    });
  });

  describe('GET /users pagination', () => {
    let p: TestApp;
    let get: ReturnType<typeof client>;
    let authorization: string;
    before(async () => {
      p = await createTestApp(kind);
      authorization = await adminAuthorization(p);
      get = client(p);
      const crud = new UserCRUD(p.database, usersTable);
      // Names and emails sort in the opposite order to user_id: only the id orders the pages.
      await crud.addAll(
        Array.from({ length: 60 }, (_, i) => ({
          name: `bulk ${String(99 - i)}`,
          email: `bulk${String(99 - i)}@myapi.com`,
          hashed_password: 'not-a-hash',
        })),
      );
    });
    after(async () => {
      await p.close();
    });

    const page = async (url: string) => {
      const response = await get('GET', url, authorization);
      assert.equal(response.statusCode, 200, `${url}: ${show(response)}`);
      const body = response.json<User[]>();
      for (const user of body) assertPublicUser(user);
      return { response, body, ids: body.map((u) => u.user_id) };
    };

    it('pages by user_id: default 50, at most 200, X-Total-Count, and a Link until the last page', async () => {
      const all = await page('/users?limit=200');
      assert.equal(all.ids.length, 61);
      assert.equal(all.response.headers['x-total-count'], '61');
      assert.equal(nextLink(all.response), undefined);
      assert.deepEqual(
        all.ids,
        [...all.ids].sort((a, b) => a - b),
      );
      assert.equal(new Set(all.ids).size, all.ids.length);
      assert.ok(!all.response.body.includes('hashed_password'));
      assert.ok(!all.response.body.includes('not-a-hash'));

      const first = await page('/users');
      assert.deepEqual(first.ids, all.ids.slice(0, 50));
      assert.equal(first.response.headers['x-total-count'], '61');
      assert.equal(
        first.response.headers.link,
        `</users?limit=50&after=${all.ids[49]}>; rel="next"`,
      );
      const rest = await page(nextLink(first.response) ?? assert.fail('no next link'));
      assert.deepEqual(rest.ids, all.ids.slice(50));
      assert.equal(nextLink(rest.response), undefined);

      // Exactly one page's worth left: still no Link on it (nothing after it).
      const exact = await page(`/users?limit=11&after=${all.ids[49]}`);
      assert.equal(exact.ids.length, 11);
      assert.equal(nextLink(exact.response), undefined);

      for (const limit of ['0', '201', '-1', 'abc', '1.5']) {
        const refused = await get('GET', `/users?limit=${limit}`, authorization);
        assert.equal(refused.statusCode, 422, `limit=${limit}: ${show(refused)}`);
      }
    });

    it('following the Link visits every user exactly once, even with inserts and deletes between pages', async () => {
      const all = (await page('/users?limit=200')).ids;
      const crud = new UserCRUD(p.database, usersTable);
      const seen: number[] = [];
      let url: string | undefined = '/users?limit=7';
      let pages = 0;
      let inserted: number | undefined;
      while (url !== undefined) {
        const current = await page(url);
        assert.ok(current.ids.length > 0 && current.ids.length <= 7, url);
        assert.match(url, /^\/users\?limit=7(&after=\d+)?$/);
        seen.push(...current.ids);
        pages += 1;
        if (pages === 1) {
          // Between pages: a user who sorts first by name and email arrives, and one already
          // seen leaves. Offset paging would now repeat or skip a user; keyset paging does not.
          const [row] = await crud.addAll([
            { name: 'AAA first', email: 'aaa@myapi.com', hashed_password: 'not-a-hash' },
          ]);
          inserted = row?.user_id;
          assert.ok(await crud.remove(current.ids[2] ?? -1));
        }
        url = nextLink(current.response);
        assert.ok(pages < 50, 'the Link never ends');
      }
      assert.ok(inserted !== undefined);
      assert.equal(new Set(seen).size, seen.length, `a user was listed twice: ${seen.join()}`);
      assert.deepEqual(seen, [...all, inserted]);
    });
  });

  describe('the last active superuser', () => {
    let s: TestApp;
    let call2: ReturnType<typeof client>;
    before(async () => {
      s = await createTestApp(kind);
      call2 = client(s);
    });
    after(async () => {
      await s.close();
    });

    it('cannot be demoted, deactivated or deleted (409), not even by themselves; an inactive one does not count', async () => {
      const authorization = await adminAuthorization(s);
      const me = (await call2('GET', '/users/me', authorization)).json<User>();
      assert.equal(me.is_superuser, true);
      // A disabled superuser cannot manage accounts: it must not count as the remaining one.
      const { users } = accounts(s);
      const dormant = await users.createUser({
        name: 'dormant admin',
        email: 'dormant@myapi.com',
        password: STRONG,
        is_superuser: true,
      });
      const off = await call2('PATCH', `/users/${dormant.user_id}`, authorization, {
        is_active: false,
      });
      assert.equal(off.statusCode, 200, show(off));
      assert.deepEqual(await activeSuperusers(s), [me.user_id]);

      for (const [method, payload] of [
        ['PATCH', { is_superuser: false }],
        ['PATCH', { is_active: false }],
        ['PATCH', { is_active: false, is_superuser: false }],
        ['PATCH', { name: 'still here', is_superuser: false }],
        ['DELETE', undefined],
      ] as [Method, object | undefined][]) {
        const response = await call2(method, `/users/${me.user_id}`, authorization, payload);
        const label = `${method} ${JSON.stringify(payload)}`;
        assert.equal(response.statusCode, 409, `${label}: ${show(response)}`);
        assert.match(problem(response).detail, /last active superuser/, label);
      }
      const after = await call2('GET', `/users/${me.user_id}`, authorization);
      assert.equal(after.statusCode, 200, show(after));
      assert.deepEqual(after.json(), me);
      assert.deepEqual(await activeSuperusers(s), [me.user_id]);
      // The token still works, with all its scopes.
      assert.equal((await call2('GET', '/users', authorization)).statusCode, 200);
      assert.equal((await loginTokens(s.app, ADMIN.email, ADMIN.password)).scope, ALL_SCOPES);
    });

    it('with two, one can be demoted, then the other cannot', async () => {
      const first = await adminAuthorization(s);
      const firstId = (await call2('GET', '/users/me', first)).json<User>().user_id;
      const created = await call2('POST', '/users', first, {
        name: 'another admin',
        email: 'another.admin@myapi.com',
        password: STRONG,
        is_superuser: true,
      });
      assert.equal(created.statusCode, 201, show(created));
      const secondId = created.json<User>().user_id;
      const second = await bearer(s, 'another.admin@myapi.com');

      // The second demotes the first (not the last one: allowed)...
      const demoted = await call2('PATCH', `/users/${firstId}`, second, { is_superuser: false });
      assert.equal(demoted.statusCode, 200, show(demoted));
      assert.equal(demoted.json<User>().is_superuser, false);
      // ...and now is the last: neither can it demote, disable or delete itself.
      for (const [method, payload] of [
        ['PATCH', { is_superuser: false }],
        ['PATCH', { is_active: false }],
        ['DELETE', undefined],
      ] as [Method, object | undefined][]) {
        const response = await call2(method, `/users/${secondId}`, second, payload);
        assert.equal(response.statusCode, 409, `${method}: ${show(response)}`);
        assert.match(problem(response).detail, /last active superuser/);
      }
      assert.deepEqual(await activeSuperusers(s), [secondId]);

      // Put the first back for the next test.
      const restored = await call2('PATCH', `/users/${firstId}`, second, { is_superuser: true });
      assert.equal(restored.statusCode, 200, show(restored));
    });

    it('two admins demoting each other at the same moment: one 200, one refused, one superuser left', async () => {
      const a = await adminAuthorization(s);
      const aId = (await call2('GET', '/users/me', a)).json<User>().user_id;
      const b = await bearer(s, 'another.admin@myapi.com');
      const bId = (await call2('GET', '/users/me', b)).json<User>().user_id;
      // Repeated: a single round might serialise by luck even without a lock.
      for (let round = 1; round <= 5; round++) {
        assert.deepEqual(
          await activeSuperusers(s),
          [aId, bId].sort((x, y) => x - y),
        );
        const [byA, byB] = await Promise.all([
          call2('PATCH', `/users/${bId}`, a, { is_superuser: false }),
          call2('PATCH', `/users/${aId}`, b, { is_superuser: false }),
        ]);
        const statuses = [byA.statusCode, byB.statusCode].sort();
        // The other is refused: 409 when both passed the scope check, 403 when the first
        // demotion had already reached this process (NOTIFY) before the second was checked.
        assert.equal(statuses[0], 200, `round ${round}: ${show(byA)} | ${show(byB)}`);
        assert.ok(
          statuses[1] === 409 || statuses[1] === 403,
          `round ${round}: ${show(byA)} | ${show(byB)}`,
        );
        const survivors = await activeSuperusers(s);
        assert.equal(survivors.length, 1, `round ${round}: active superusers ${survivors.join()}`);
        const loser = byA.statusCode === 200 ? bId : aId;
        const winner = byA.statusCode === 200 ? a : b;
        assert.notEqual(survivors[0], loser);
        // Promote the demoted one back for the next round.
        const back = await call2('PATCH', `/users/${loser}`, winner, { is_superuser: true });
        assert.equal(back.statusCode, 200, show(back));
      }
    });
  });
});
