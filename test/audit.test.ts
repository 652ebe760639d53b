import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { loadSettings } from '../src/backend/config.js';
import { openDatabase, queryRows } from '../src/backend/database.js';
import { auditEvents } from '../src/models/audit.js';
import type { Token } from '../src/schemas/auth.js';
import type { User } from '../src/schemas/users.js';
import { AuditCRUD, type AuditRecord } from '../src/services/audit/index.js';
import {
  createServerDatabase,
  createTestApp,
  databaseKinds,
  describeEachDatabase,
  TOKEN_KEY,
  type TestApp,
} from './support/databases.js';
import { accounts, ADMIN, USER } from './support/http.js';
import { lines, runCommand, scaled, tempDir } from './support/process.js';
import { listening, nextLink, type Call } from './support/socket_http.js';

/**
 * The security audit log over HTTP: which events flows write, with their actor and client, that
 * a failed change leaves no row (same transaction), GET /audit's filters and keyset pages, the
 * retention prune, and that no password or token ever reaches the table.
 */
describeEachDatabase('audit log', (kind) => {
  let t: TestApp;
  let call: Call;
  let admin: string;
  let adminId: number;
  let userId: number;
  const secrets: string[] = [];

  const password = async (username: string, secret: string) =>
    call('POST', '/token', { form: { username, password: secret } });

  const tokens = async (username: string, secret: string): Promise<Token> => {
    const reply = await password(username, secret);
    assert.equal(reply.status, 200, reply.text);
    const token = reply.body as Token;
    secrets.push(token.access_token, token.refresh_token);
    return token;
  };

  /** Every event matching the query, following the Link header across pages. */
  const events = async (query: string): Promise<AuditRecord[]> => {
    const all: AuditRecord[] = [];
    let path: string | undefined = `/audit?${query}`;
    while (path !== undefined) {
      const reply = await call('GET', path, { authorization: admin });
      assert.equal(reply.status, 200, reply.text);
      all.push(...(reply.body as AuditRecord[]));
      path = nextLink(reply.headers);
    }
    return all;
  };

  before(async () => {
    t = await createTestApp(kind);
    ({ call } = await listening(t.app));
    const { users } = accounts(t);
    adminId = (await users.createUser(ADMIN)).user_id;
    admin = `Bearer ${(await tokens(ADMIN.email, ADMIN.password)).access_token}`;
    secrets.push(ADMIN.password, USER.password);
    const created = await call('POST', '/users', {
      authorization: admin,
      json: { name: USER.name, email: USER.email, password: 'a long and unusual passphrase' },
    });
    assert.equal(created.status, 201, created.text);
    userId = (created.body as User).user_id;
    secrets.push('a long and unusual passphrase');
  });
  after(async () => {
    await t.close();
  });

  it('records logins and their failures with the reason, the client, and throttle refusals', async () => {
    const good = 'a long and unusual passphrase';
    await tokens(USER.email, good);
    assert.equal((await password('nobody@myapi.com', 'guess-1')).status, 401);
    secrets.push('guess-1');
    // Guessed at another account: the throttle's block would keep USER out of the next tests.
    const victim = 'victim@myapi.com';
    await accounts(t).users.createUser({ name: 'victim', email: victim, password: good });
    assert.equal((await password(USER.email, 'wrong-guess')).status, 401);
    secrets.push('wrong-guess');
    let throttled = false;
    for (let i = 0; i < 12 && !throttled; i++) {
      const reply = await password(victim, `wrong-guess-${i}`);
      secrets.push(`wrong-guess-${i}`);
      throttled = reply.status === 429;
    }
    assert.ok(throttled, 'the throttle refused a guess');

    const mine = await events(`user_id=${userId}&event=login`);
    const success = mine.find((e) => e.outcome === 'success');
    assert.ok(success, JSON.stringify(mine));
    assert.equal(success.client_address, '127.0.0.1');
    assert.equal(success.user_agent, 'myapi-test/1');
    assert.match(String(success.details.session_id), /^[0-9a-f-]{36}$/);
    assert.ok(mine.some((e) => e.outcome === 'failure' && e.reason === 'wrong_password'));
    const unknown = await events('event=login');
    assert.ok(
      unknown.some(
        (e) =>
          e.reason === 'unknown_user' &&
          e.user_id === null &&
          e.details.username === 'nobody@myapi.com',
      ),
    );
    const refusals = await events('event=login.throttled');
    const [refusal] = refusals;
    assert.ok(refusal);
    assert.equal(refusal.outcome, 'failure');
    assert.equal(refusal.details.username, victim);
  });

  it('records admin actions on users with the actor, and a failed change leaves no row', async () => {
    const created = await events(`user_id=${userId}&event=user.create`);
    assert.equal(created.length, 1);
    assert.equal(created[0]?.actor_id, adminId);

    for (const change of [{ is_superuser: true }, { is_superuser: false }, { is_active: false }]) {
      const reply = await call('PATCH', `/users/${userId}`, { authorization: admin, json: change });
      assert.equal(reply.status, 200, reply.text);
    }
    const kinds = (await events(`user_id=${userId}`)).map((e) => e.event);
    for (const kind of ['user.promote', 'user.demote', 'user.deactivate']) {
      assert.ok(kinds.includes(kind), `${kind} in ${kinds.join(',')}`);
    }
    const deactivated = await events(`user_id=${userId}&event=user.deactivate`);
    assert.equal(deactivated[0]?.actor_id, adminId);

    // The last active superuser cannot be demoted: the 409 rolls back the row written first.
    const before = (await events(`user_id=${adminId}&event=user.demote`)).length;
    const refused = await call('PATCH', `/users/${adminId}`, {
      authorization: admin,
      json: { is_superuser: false },
    });
    assert.equal(refused.status, 409, refused.text);
    assert.equal((await events(`user_id=${adminId}&event=user.demote`)).length, before);

    const crud = new AuditCRUD(t.database, auditEvents);
    await assert.rejects(
      t.database.db.transaction(async (tx) => {
        await crud.record({ event: 'user.update', userId: 999_999, reason: 'rolled back' }, tx);
        throw new Error('the change failed');
      }),
      /the change failed/,
    );
    assert.equal((await events('user_id=999999')).length, 0);

    await call('PATCH', `/users/${userId}`, { authorization: admin, json: { is_active: true } });
  });

  it('records refresh-token reuse, revocation and password changes', async () => {
    const good = 'a long and unusual passphrase';
    const first = await tokens(USER.email, good);
    const refreshed = await call('POST', '/token', {
      form: { grant_type: 'refresh_token', refresh_token: first.refresh_token },
    });
    assert.equal(refreshed.status, 200, refreshed.text);
    secrets.push((refreshed.body as Token).refresh_token, (refreshed.body as Token).access_token);
    const replay = await call('POST', '/token', {
      form: { grant_type: 'refresh_token', refresh_token: first.refresh_token },
    });
    assert.equal(replay.status, 400);
    const reuse = await events(`user_id=${userId}&event=token.refresh_reuse`);
    assert.equal(reuse.length, 1);
    assert.equal(reuse[0]?.outcome, 'failure');

    const second = await tokens(USER.email, good);
    const revoked = await call('POST', '/token/revoke', { form: { token: second.refresh_token } });
    assert.equal(revoked.status, 200);
    const revocations = await events(`user_id=${userId}&event=session.revoke`);
    assert.ok(revocations.some((e) => e.reason === 'revoked by client'));

    const third = await tokens(USER.email, good);
    const bearer = `Bearer ${third.access_token}`;
    const wrong = await call('POST', '/users/me/password', {
      authorization: bearer,
      json: { current_password: 'not-it-at-all', new_password: 'another unusual passphrase' },
    });
    assert.equal(wrong.status, 403);
    const changed = await call('POST', '/users/me/password', {
      authorization: bearer,
      json: { current_password: good, new_password: 'another unusual passphrase' },
    });
    assert.equal(changed.status, 204, changed.text);
    secrets.push('not-it-at-all', 'another unusual passphrase');
    const changes = await events(`user_id=${userId}&event=password.change`);
    assert.deepEqual(
      changes.map((e) => [e.outcome, e.reason, e.actor_id]),
      [
        ['success', null, userId],
        ['failure', 'wrong_password', userId],
      ],
    );
    assert.ok(Number(changes[0]?.details.revoked_sessions) >= 1);
  });

  it('pages newest first with a Link header, filters by time, and refuses non-admins', async () => {
    const all = await events('');
    const paged = await events('limit=2');
    assert.deepEqual(
      paged.map((e) => e.audit_id),
      all.map((e) => e.audit_id),
    );
    const ids = all.map((e) => e.audit_id);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => b - a),
    );
    const first = await call('GET', '/audit?limit=2', { authorization: admin });
    assert.match(first.headers.get('link') ?? '', /^<\/audit\?limit=2&before=[0-9]+>; rel="next"$/);

    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.equal((await events(`since=${encodeURIComponent(future)}`)).length, 0);
    assert.equal((await events(`until=${encodeURIComponent(future)}`)).length, all.length);

    const user = await tokens(USER.email, 'another unusual passphrase');
    const denied = await call('GET', '/audit', { authorization: `Bearer ${user.access_token}` });
    assert.equal(denied.status, 403);
    assert.equal((await call('GET', '/audit')).status, 401);
    const bad = await call('GET', '/audit?event=nope', { authorization: admin });
    assert.equal(bad.status, 422);
  });

  it('prunes events past the retention period', async () => {
    const [oldest] = (await events('')).slice(-1);
    assert.ok(oldest);
    await t.database.db.execute(
      sql`update ${auditEvents} set at = now() - interval '400 days' where audit_id = ${oldest.audit_id}`,
    );
    const { audit } = accounts(t);
    assert.equal(await audit.prune(), 1, 'the default retention is 365 days');
    assert.ok(!(await events('')).some((e) => e.audit_id === oldest.audit_id));
  });

  it('stores no password or token that the flows above carried', async () => {
    const rows = await queryRows<{ row: string }>(
      t.database.db,
      sql`select t::text as row from ${auditEvents} t`,
    );
    assert.ok(rows.length > 10);
    const table = rows.map((r) => r.row).join('\n');
    for (const secret of secrets) {
      assert.ok(
        !table.includes(secret),
        `the audit table holds a secret: ${secret.slice(0, 6)}...`,
      );
    }
    const stored = new AuditCRUD(t.database, auditEvents);
    await stored.record({
      event: 'user.update',
      userId: 424_242,
      details: { new_password: 'leak', refresh_token: 'leak', otp_code: 'leak', field: 'ok' },
    });
    const [kept] = await events('user_id=424242');
    assert.deepEqual(kept?.details, { field: 'ok' });
  });
});

/** `myapi audit` and `myapi audit prune` as an operator runs them (subprocesses). */
describe('myapi audit', { concurrency: true }, () => {
  const targets = databaseKinds().includes('postgres') ? ['embedded', 'postgres'] : ['embedded'];
  for (const target of targets) {
    it(`lists, filters and prunes on ${target}`, { timeout: scaled(300_000) }, async () => {
      const cwd = tempDir();
      const server = target === 'postgres' ? await createServerDatabase() : undefined;
      const env: Record<string, string> =
        server === undefined ? {} : { MYAPI_DATABASE__DSN: server.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
      const run = (args: string[], extra: Record<string, string> = {}) =>
        runCommand(args, { cwd, env: { ...env, ...extra }, timeoutMs: scaled(60_000) });
      try {
        if (server !== undefined) assert.equal((await run(['migrate'])).code, 0);
        for (const email of ['one@myapi.com', 'two@myapi.com']) {
          const created = await run([
            'create-user',
            '--name',
            'x',
            '--email',
            email,
            '--password',
            'a long and unusual passphrase',
          ]);
          assert.equal(created.code, 0, created.stderr);
        }
        const json = await run(['audit', '--json', '--user', 'two@myapi.com']);
        assert.equal(json.code, 0, json.stderr);
        const records = lines(json.stdout).map((line) => JSON.parse(line) as AuditRecord);
        const [record] = records;
        assert.ok(record && records.length === 1, json.stdout);
        assert.equal(record.event, 'user.create');
        assert.equal(record.details.email, 'two@myapi.com');
        assert.ok(!json.stdout.includes('passphrase'));

        const table = await run(['audit', '--event', 'user.create', '--limit', '1']);
        assert.equal(table.code, 0, table.stderr);
        const [header, ...rows] = lines(table.stdout);
        assert.equal(
          header,
          'audit_id\tat\tevent\toutcome\treason\tuser_id\tactor_id\tclient_address\tdetails',
        );
        assert.equal(rows.length, 1);
        assert.match(rows[0] ?? '', /^2\t[0-9T:.Z-]+\tuser\.create\tsuccess\t-\t2\t-\t-\t\{/);
        const future = await run(['audit', '--json', '--since', '2999-01-01']);
        assert.equal(future.stdout, '');
        const bad = await run(['audit', '--since', 'yesterday-ish']);
        assert.equal(bad.code, 1);

        const kept = await run(['audit', 'prune'], { MYAPI_AUDIT__RETENTION_DAYS: '1' });
        assert.equal(kept.stdout, 'deleted 0 audit events\n', kept.stderr);
        const dsn = server?.dsn ?? `pglite:${cwd}/.myapi/pgdata`;
        const { settings } = loadSettings({
          env: { MYAPI_DATABASE__DSN: dsn, MYAPI_TOKEN_KEY: TOKEN_KEY },
          cwd,
        });
        const database = await openDatabase(settings, { role: 'tool' });
        try {
          await database.db.execute(
            sql`update ${auditEvents} set at = now() - interval '3 days' where user_id = 1`,
          );
        } finally {
          await database.close();
        }
        const pruned = await run(['audit', 'prune'], { MYAPI_AUDIT__RETENTION_DAYS: '2' });
        assert.equal(pruned.stdout, 'deleted 1 audit event\n', pruned.stderr);
        const left = await run(['audit', '--json']);
        assert.deepEqual(
          lines(left.stdout).map((line) => (JSON.parse(line) as AuditRecord).user_id),
          [2],
        );
      } finally {
        await server?.drop();
      }
    });
  }
});
