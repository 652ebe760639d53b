import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { Token } from '../src/schemas/auth.js';
import type { AuditRecord } from '../src/services/audit/index.js';
import { createTestApp, describeEachDatabase, type TestApp } from './support/databases.js';
import { accounts, ADMIN, USER } from './support/http.js';
import { delay } from './support/process.js';
import { listening, type Call } from './support/socket_http.js';

interface Session {
  session_id: string;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  client_address: string | null;
  user_agent: string | null;
  scope: string;
  current: boolean;
}

/** A user's logins over HTTP: the list with its current marker, ending one or all others; admins. */
describeEachDatabase('user sessions', (kind) => {
  let t: TestApp;
  let call: Call;
  let admin: string;
  let adminId: number;
  let userId: number;

  const login = async (email: string, password: string, agent: string): Promise<Token> => {
    const reply = await call('POST', '/token', {
      form: { username: email, password },
      headers: { 'user-agent': agent },
    });
    assert.equal(reply.status, 200, reply.text);
    return reply.body as Token;
  };
  const bearer = (token: Token) => `Bearer ${token.access_token}`;
  const refresh = (token: Token) =>
    call('POST', '/token', {
      form: { grant_type: 'refresh_token', refresh_token: token.refresh_token },
    });
  const list = async (authorization: string, path = '/users/me/sessions') => {
    const reply = await call('GET', path, { authorization });
    assert.equal(reply.status, 200, reply.text);
    return reply.body as Session[];
  };

  before(async () => {
    t = await createTestApp(kind, { tokenExpireMinutes: 60 });
    ({ call } = await listening(t.app));
    const { users } = accounts(t);
    adminId = (await users.createUser(ADMIN)).user_id;
    userId = (await users.createUser(USER)).user_id;
    admin = bearer(await login(ADMIN.email, ADMIN.password, 'admin-console'));
  });
  after(async () => {
    await t.close();
  });

  it('lists your logins with address, client and the current marker; ends one of them', async () => {
    const laptop = await login(USER.email, USER.password, 'laptop/1.0');
    const phone = await login(USER.email, USER.password, 'phone/2.0');
    const seen = await list(bearer(laptop));
    assert.equal(seen.length, 2);
    const mine = seen.find((s) => s.current);
    assert.equal(mine?.user_agent, 'laptop/1.0');
    assert.equal(mine.client_address, '127.0.0.1');
    assert.equal(seen.filter((s) => s.current).length, 1);
    const other = seen.find((s) => !s.current);
    assert.ok(other);
    assert.equal(other.user_agent, 'phone/2.0');

    // A refresh moves last_used_at on; the database clock, so wait past its resolution.
    await delay(20);
    const renewed = await refresh(phone);
    assert.equal(renewed.status, 200, renewed.text);
    const after = (await list(bearer(laptop))).find((s) => s.session_id === other.session_id);
    assert.ok(after && after.last_used_at > other.last_used_at, JSON.stringify(after));

    const ended = await call('DELETE', `/users/me/sessions/${other.session_id}`, {
      authorization: bearer(laptop),
    });
    assert.equal(ended.status, 204, ended.text);
    assert.equal((await refresh(renewed.body as Token)).status, 400, 'its refresh token is dead');
    assert.deepEqual(
      (await list(bearer(laptop))).map((s) => s.current),
      [true],
    );
    const again = await call('DELETE', `/users/me/sessions/${other.session_id}`, {
      authorization: bearer(laptop),
    });
    assert.equal(again.status, 404);
    const revocations = (
      await call('GET', `/audit?user_id=${userId}&event=session.revoke`, { authorization: admin })
    ).body as AuditRecord[];
    const [revocation] = revocations;
    assert.ok(revocation);
    assert.equal(revocation.actor_id, userId);
    assert.equal(revocation.details.session_id, other.session_id);
  });

  it("cannot end another user's login, and refuses an id that is not a UUID", async () => {
    const token = await login(USER.email, USER.password, 'laptop/1.0');
    const [adminSession] = await list(admin);
    assert.ok(adminSession);
    const foreign = await call('DELETE', `/users/me/sessions/${adminSession.session_id}`, {
      authorization: bearer(token),
    });
    assert.equal(foreign.status, 404);
    assert.equal((await list(admin)).length, 1, "the admin's login lives on");
    const bad = await call('DELETE', '/users/me/sessions/not-a-uuid', {
      authorization: bearer(token),
    });
    assert.equal(bad.status, 422);
  });

  it('ends all your other logins and keeps the current one', async () => {
    const keep = await login(USER.email, USER.password, 'keep');
    const others = [
      await login(USER.email, USER.password, 'a'),
      await login(USER.email, USER.password, 'b'),
    ];
    const ended = await call('DELETE', '/users/me/sessions', { authorization: bearer(keep) });
    assert.equal(ended.status, 204, ended.text);
    const left = await list(bearer(keep));
    assert.deepEqual(
      left.map((s) => [s.user_agent, s.current]),
      [['keep', true]],
    );
    for (const token of others) assert.equal((await refresh(token)).status, 400);
    assert.equal((await refresh(keep)).status, 200);
  });

  it("lets admins see and end any user's logins; others get 403", async () => {
    const token = await login(USER.email, USER.password, 'watched');
    const seen = await list(admin, `/users/${userId}/sessions`);
    const target = seen.find((s) => s.user_agent === 'watched');
    assert.ok(target);
    assert.equal(target.current, false);
    const ended = await call('DELETE', `/users/${userId}/sessions/${target.session_id}`, {
      authorization: admin,
    });
    assert.equal(ended.status, 204, ended.text);
    assert.equal((await refresh(token)).status, 400);
    const wrongUser = await call('DELETE', `/users/${adminId}/sessions/${target.session_id}`, {
      authorization: admin,
    });
    assert.equal(wrongUser.status, 404);
    assert.equal(
      (await call('GET', '/users/999999/sessions', { authorization: admin })).status,
      404,
    );
    const audit = (
      await call('GET', `/audit?user_id=${userId}&event=session.revoke`, { authorization: admin })
    ).body as AuditRecord[];
    const [latest] = audit;
    assert.ok(latest);
    assert.equal(latest.actor_id, adminId);
    assert.equal(latest.reason, 'ended by admin');

    const user = await login(USER.email, USER.password, 'plain');
    const denied = await call('GET', `/users/${userId}/sessions`, { authorization: bearer(user) });
    assert.equal(denied.status, 403);
  });
});
