import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { after, before, it } from 'node:test';
import { getTableName, sql, type Table } from 'drizzle-orm';
import type { Database } from '../src/backend/database.js';
import { createServices } from '../src/services/index.js';
import { appOn, type AppOnDatabase } from './support/apps.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { ADMIN, USER } from './support/http.js';
import { accountOptions } from '../src/services/index.js';
import { listening, type Answer, type Client } from './support/listening.js';
import { delay } from './support/process.js';
import { scaled } from './support/timeouts.js';

interface Created {
  token_id: string;
  name: string;
  prefix: string;
  scope: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  token: string;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SHAPE = /^myapi_pat_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;
const DAY_MS = 86_400_000;

/** GitHub's checksum, computed here from the scheme's description, not from the server's code. */
function checksumOf(random: string): string {
  let value = crc32(random);
  let text = '';
  for (let i = 0; i < 6; i++) {
    text = BASE62.charAt(value % 62) + text;
    value = Math.floor(value / 62);
  }
  return text;
}

interface Counted {
  database: Database;
  selects: () => number;
  updates: () => number;
}

/** The tables a bearer check can read or write; the app's pollers (mail outbox, key ring) use others. */
const BEARER_TABLES = new Set(['personal_access_tokens', 'auth_sessions', 'users']);

/**
 * A Proxy of the database that counts the selects from and updates of the bearer check's tables
 * started through it. Statements on other tables come from the app's own timers (the mail outbox
 * poll, the signing key ring's refresh), which may fire while a test counts.
 */
function countingSelects(database: Database): Counted {
  let selects = 0;
  let updates = 0;
  const counts = (table: unknown) => BEARER_TABLES.has(getTableName(table as Table));
  const db = new Proxy(database.db, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (property === 'update') {
        return (table: Parameters<typeof target.update>[0]) => {
          if (counts(table)) updates++;
          return target.update(table);
        };
      }
      if (property !== 'select') return value;
      return (...fields: Parameters<typeof target.select>) => {
        const builder = target.select(...fields);
        return new Proxy(builder, {
          get(inner, key, innerReceiver) {
            const method = Reflect.get(inner, key, innerReceiver) as unknown;
            if (key !== 'from' || typeof method !== 'function') return method;
            return (table: unknown, ...rest: unknown[]) => {
              if (counts(table)) selects++;
              return (method as (...args: unknown[]) => unknown).call(inner, table, ...rest);
            };
          },
        });
      };
    },
  });
  return { database: { ...database, db }, selects: () => selects, updates: () => updates };
}

describeEachDatabase('personal access tokens over HTTP', (kind) => {
  let t: TestDatabase;
  let strict: AppOnDatabase;
  let lenient: AppOnDatabase;
  let http: Client;
  let open: Client;
  let userId: number;
  let adminId: number;
  let counted: Counted;
  let countedApp: AppOnDatabase;
  let countedHttp: Client;

  const bearer = (token: string) => `Bearer ${token}`;
  const create = (client: Client, authorization: string, json: Record<string, unknown>) =>
    client.request<Created & { detail?: string; error?: string }>('POST', '/users/me/tokens', {
      authorization,
      json,
    });
  const userLogin = async () => bearer((await http.login(USER.email, USER.password)).access_token);
  const adminLogin = async () =>
    bearer((await http.login(ADMIN.email, ADMIN.password)).access_token);
  const madeBy = async (authorization: string, json: Record<string, unknown>) => {
    const answer = await create(http, authorization, json);
    assert.equal(answer.status, 201, answer.text);
    return answer.body;
  };

  before(async () => {
    t = await createTestDatabase(kind);
    const services = createServices(t.database, { accounts: accountOptions(t.settings) });
    await services.movies.seedDemo();
    userId = (await services.users.createUser(USER)).user_id;
    adminId = (await services.users.createUser(ADMIN)).user_id;
    strict = await appOn(t, { access_tokens: { max_lifetime_days: 90, allow_no_expiry: false } });
    lenient = await appOn(t, { access_tokens: { max_lifetime_days: 90, allow_no_expiry: true } });
    http = await listening(strict.app);
    open = await listening(lenient.app);
    counted = countingSelects(t.database);
    countedApp = await appOn(t, {}, counted.database);
    countedHttp = await listening(countedApp.app);
  });
  after(async () => {
    await strict.app.close();
    await lenient.app.close();
    await countedApp.app.close();
    await t.close();
  });

  it('shows the secret once, in GitHub’s form, and lists the token without it', async () => {
    const authorization = await userLogin();
    const before = Date.now();
    const created = await madeBy(authorization, {
      name: 'nightly import',
      scope: 'movies:read',
      expires_in_days: 7,
    });
    const match = SHAPE.exec(created.token);
    assert.ok(match !== null, created.token);
    assert.equal(match[2], checksumOf(match[1] ?? ''), 'the checksum is the CRC32 of the secret');
    assert.equal(created.prefix, created.token.slice(0, 16));
    assert.equal(created.scope, 'movies:read');
    assert.equal(created.last_used_at, null);
    const expires = Date.parse(created.expires_at ?? '');
    assert.ok(Math.abs(expires - (before + 7 * DAY_MS)) < scaled(60_000), created.expires_at ?? '');

    const listed = await http.request<Record<string, unknown>[]>('GET', '/users/me/tokens', {
      authorization,
    });
    assert.equal(listed.status, 200);
    const mine = listed.body.find((token) => token.token_id === created.token_id);
    assert.ok(mine !== undefined);
    assert.deepEqual(Object.keys(mine).sort(), [
      'created_at',
      'expires_at',
      'last_used_at',
      'name',
      'prefix',
      'scope',
      'token_id',
    ]);
    assert.ok(!listed.text.includes(created.token.slice(16)), 'the secret is never listed');
    const stored = await t.database.db.execute(
      sql`select token_hash from myapi.personal_access_tokens where token_id = ${created.token_id}`,
    );
    assert.ok(!JSON.stringify(stored).includes(created.token), 'only a hash is stored');
  });

  it('works as a Bearer token on any route its scopes allow, and records its last use', async () => {
    const created = await madeBy(await userLogin(), { name: 'reader', scope: 'movies:read' });
    assert.equal((await http.movie(created.token)).status, 200);
    const me = await http.request('GET', '/users/me', { authorization: bearer(created.token) });
    assert.equal(me.status, 200);
    assert.equal(me.body.email, USER.email);
    // The default lifetime is 30 days.
    assert.ok(Date.parse(created.expires_at ?? '') - Date.now() > 29 * DAY_MS);

    // last_used_at is written after the answer; it shows once the write is done.
    const deadline = Date.now() + scaled(5000);
    let lastUsed: unknown = null;
    while (lastUsed === null && Date.now() < deadline) {
      const listed = await http.request<Record<string, unknown>[]>('GET', '/users/me/tokens', {
        authorization: bearer(created.token),
      });
      lastUsed = listed.body.find((token) => token.token_id === created.token_id)?.last_used_at;
      if (lastUsed === null) await delay(50);
    }
    assert.equal(typeof lastUsed, 'string');
    assert.ok(Date.now() - Date.parse(String(lastUsed)) < scaled(60_000));
  });

  it('grants only scopes the creating credentials hold', async () => {
    const user = await userLogin();
    const refused = await create(http, user, { name: 'x', scope: 'movies:write' });
    assert.equal(refused.status, 422);
    assert.match(String(refused.body.detail), /movies:write/);
    const unknown = await create(http, user, { name: 'x', scope: 'movies:everything' });
    assert.equal(unknown.status, 422);

    const admin = await adminLogin();
    const narrow = await madeBy(admin, { name: 'read only', scope: 'movies:read' });
    const users = await http.request('GET', '/users', { authorization: bearer(narrow.token) });
    assert.equal(users.status, 403);
    assert.equal(users.body.error, 'insufficient_scope');
    const wide = await madeBy(admin, { name: 'admin tool', scope: 'users:admin movies:read' });
    assert.equal(wide.scope, 'movies:read users:admin');
    const allowed = await http.request('GET', '/users', { authorization: bearer(wide.token) });
    assert.equal(allowed.status, 200);

    // A login narrowed to movies:read cannot hand out users:admin through a token.
    const narrowLogin = bearer(
      (await http.login(ADMIN.email, ADMIN.password, 'movies:read')).access_token,
    );
    const escalation = await create(http, narrowLogin, { name: 'x', scope: 'users:admin' });
    assert.equal(escalation.status, 422);
    const everything = await madeBy(narrowLogin, { name: 'all it has' });
    assert.equal(everything.scope, 'movies:read');
  });

  it('keeps the lifetime within the server’s maximum, and no expiry only where allowed', async () => {
    const user = await userLogin();
    const tooLong = await create(http, user, { name: 'x', expires_in_days: 91 });
    assert.equal(tooLong.status, 422);
    assert.match(String(tooLong.body.detail), /at most 90/);
    const forever = await create(http, user, { name: 'x', expires_in_days: null });
    assert.equal(forever.status, 422);
    assert.match(String(forever.body.detail), /MYAPI_ACCESS_TOKENS__ALLOW_NO_EXPIRY/);
    const zero = await create(http, user, { name: 'x', expires_in_days: 0 });
    assert.equal(zero.status, 422);
    const blank = await create(http, user, { name: '   ' });
    assert.equal(blank.status, 422);

    const allowed = await create(open, user, { name: 'forever', expires_in_days: null });
    assert.equal(allowed.status, 201, allowed.text);
    assert.equal(allowed.body.expires_at, null);
    assert.equal((await open.movie(allowed.body.token)).status, 200);
  });

  it('refuses a mistyped token without reading the database, an unknown one after', async () => {
    const created = await madeBy(await userLogin(), { name: 'typo' });
    const last = created.token.at(-1) === 'a' ? 'b' : 'a';
    const mistyped = `${created.token.slice(0, -1)}${last}`;
    const before = counted.selects();
    const refused = await countedHttp.movie(mistyped);
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate') ?? '', /invalid_token/);
    assert.equal(counted.selects(), before, 'a bad checksum costs no query');

    // Well formed (a valid checksum) but never issued: looked up, then refused.
    const random = 'A'.repeat(43);
    const unknown = `myapi_pat_${random}${checksumOf(random)}`;
    assert.equal((await countedHttp.movie(unknown)).status, 401);
    assert.ok(counted.selects() > before, 'a well-formed token is looked up');
    const updates = counted.updates();
    assert.equal((await countedHttp.movie(created.token)).status, 200);
    assert.equal(counted.updates(), updates + 1, 'the first use records last_used_at');
    for (let i = 0; i < 3; i++) {
      assert.equal((await countedHttp.movie(created.token)).status, 200);
    }
    assert.equal(counted.updates(), updates + 1, 'at most one write a minute per token');
  });

  it('cannot mint other tokens', async () => {
    const created = await madeBy(await adminLogin(), { name: 'no minting' });
    const another = await create(http, bearer(created.token), { name: 'child' });
    assert.equal(another.status, 403);
    assert.match(String(another.body.detail), /cannot create tokens/);
    const refresh = await http.token({ grant_type: 'refresh_token', refresh_token: created.token });
    assert.equal(refresh.status, 400);
    assert.equal(refresh.body.error, 'invalid_grant');
    const password = await http.token({ username: ADMIN.email, password: created.token });
    assert.equal(password.status, 401);
    assert.equal(password.body.error, 'invalid_grant');
    const asAccess = await http.token({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: created.token,
    });
    assert.equal(asAccess.status, 400);
    assert.equal((await http.movie(created.token)).status, 200, 'the token itself still works');
  });

  it('stops working once its owner revokes it, and no one else may revoke it', async () => {
    const owner = await userLogin();
    const created = await madeBy(owner, { name: 'to revoke' });
    const admin = await adminLogin();
    const notTheirs = await http.request('DELETE', `/users/me/tokens/${created.token_id}`, {
      authorization: admin,
    });
    assert.equal(notTheirs.status, 404, 'another user cannot revoke it as theirs');
    assert.equal((await http.movie(created.token)).status, 200);

    const revoked = await http.request('DELETE', `/users/me/tokens/${created.token_id}`, {
      authorization: owner,
    });
    assert.equal(revoked.status, 204);
    const refused = await http.movie(created.token);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.detail, 'Token has been revoked');
    const listed = await http.request<Created[]>('GET', '/users/me/tokens', {
      authorization: owner,
    });
    assert.ok(!listed.body.some((token) => token.token_id === created.token_id));
    const again = await http.request('DELETE', `/users/me/tokens/${created.token_id}`, {
      authorization: owner,
    });
    assert.equal(again.status, 404);
    const malformed = await http.request('DELETE', '/users/me/tokens/not-a-uuid', {
      authorization: owner,
    });
    assert.equal(malformed.status, 422);
  });

  it('lets an admin list and revoke any user’s tokens', async () => {
    const created = await madeBy(await userLogin(), { name: 'watched' });
    const admin = await adminLogin();
    const listed = await http.request<Created[]>('GET', `/users/${userId}/tokens`, {
      authorization: admin,
    });
    assert.equal(listed.status, 200);
    assert.ok(listed.body.some((token) => token.token_id === created.token_id));
    const notAdmin = await http.request('GET', `/users/${adminId}/tokens`, {
      authorization: await userLogin(),
    });
    assert.equal(notAdmin.status, 403);
    const nobody = await http.request('GET', '/users/999999/tokens', { authorization: admin });
    assert.equal(nobody.status, 404);
    const wrongUser = await http.request('DELETE', `/users/${adminId}/tokens/${created.token_id}`, {
      authorization: admin,
    });
    assert.equal(wrongUser.status, 404);

    const revoked = await http.request('DELETE', `/users/${userId}/tokens/${created.token_id}`, {
      authorization: admin,
    });
    assert.equal(revoked.status, 204);
    assert.equal((await http.movie(created.token)).status, 401);
  });

  it('is revoked at /token/revoke by whoever holds it (RFC 7009)', async () => {
    const created = await madeBy(await userLogin(), { name: 'leaked' });
    const answer = await http.request('POST', '/token/revoke', {
      form: { token: created.token, token_type_hint: 'access_token' },
    });
    assert.equal(answer.status, 200);
    assert.equal((await http.movie(created.token)).status, 401);
  });

  it('follows its user: demotion narrows it, deactivation ends it', async () => {
    const admin = await adminLogin();
    const second = await http.request<{ user_id: number }>('POST', '/users', {
      authorization: admin,
      json: { name: 'second admin', email: 'second@myapi.com', password: ADMIN.password },
    });
    assert.equal(second.status, 201, second.text);
    const promoted = await http.request('PATCH', `/users/${second.body.user_id}`, {
      authorization: admin,
      json: { is_superuser: true },
    });
    assert.equal(promoted.status, 200);
    const secondLogin = bearer((await http.login('second@myapi.com', ADMIN.password)).access_token);
    const created = await madeBy(secondLogin, { name: 'ops' });
    const token = bearer(created.token);
    assert.equal((await http.request('GET', '/users', { authorization: token })).status, 200);

    await http.request('PATCH', `/users/${second.body.user_id}`, {
      authorization: admin,
      json: { is_superuser: false },
    });
    assert.equal((await http.request('GET', '/users', { authorization: token })).status, 403);
    assert.equal((await http.movie(created.token)).status, 200, 'movies:read stays');

    await http.request('PATCH', `/users/${second.body.user_id}`, {
      authorization: admin,
      json: { is_active: false },
    });
    assert.equal((await http.movie(created.token)).status, 401);
  });

  it('ends with a password change, and refuses an expired token', async () => {
    const owner = await userLogin();
    const expiring = await madeBy(owner, { name: 'expiring' });
    await t.database.db.execute(
      sql`update myapi.personal_access_tokens set expires_at = now() - interval '1 second'
          where token_id = ${expiring.token_id}`,
    );
    const expired = await http.movie(expiring.token);
    assert.equal(expired.status, 401);
    assert.equal(expired.body.detail, 'Token has expired');

    const created = await madeBy(owner, { name: 'before the change' });
    const changed = await http.request('POST', '/users/me/password', {
      authorization: owner,
      json: { current_password: USER.password, new_password: 'another long passphrase 7' },
    });
    assert.equal(changed.status, 204, changed.text);
    assert.equal((await http.movie(created.token)).status, 401);
    await http.request('POST', '/users/me/password', {
      authorization: bearer(
        (await http.login(USER.email, 'another long passphrase 7')).access_token,
      ),
      json: { current_password: 'another long passphrase 7', new_password: USER.password },
    });
  });

  it('is in the OpenAPI document, and needs a token', async () => {
    const document = await http.request<{ paths: Record<string, Record<string, unknown>> }>(
      'GET',
      '/openapi.json',
    );
    const operations = document.body.paths;
    assert.ok(operations['/users/me/tokens']?.post !== undefined);
    assert.ok(operations['/users/me/tokens/{token_id}']?.delete !== undefined);
    assert.ok(operations['/users/{user_id}/tokens']?.get !== undefined);
    assert.ok(operations['/users/{user_id}/tokens/{token_id}']?.delete !== undefined);
    const unauthenticated: Answer = await http.request('GET', '/users/me/tokens');
    assert.equal(unauthenticated.status, 401);
  });
});
