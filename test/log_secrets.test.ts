// No credential, password hash or failed statement's parameter reaches a log line, whatever the route.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { sql } from 'drizzle-orm';
import type { InjectOptions } from 'fastify';
import { createTestApp, describeEachDatabase, type TestApp } from './support/databases.js';
import { adminAuthorization, form, login, seedTutorial, USER } from './support/http.js';

const CREDENTIAL_PARAMETERS = [
  'access_token',
  'refresh_token',
  'token',
  'password',
  'client_secret',
  'code',
  'Access_Token',
  'PASSWORD',
];
/** A name no user may take in the test database: inserting it fails in PostgreSQL (23514). */
const FORBIDDEN_NAME = 'a name the database refuses';

describeEachDatabase('secrets stay out of the log', (kind) => {
  let t: TestApp;
  let user: string;
  let admin: string;
  const secrets: string[] = [];
  const secret = (label: string) => {
    const value = `sekrit${label.replace(/[^a-z]/gi, '')}${randomBytes(6).toString('hex')}`;
    secrets.push(value);
    return value;
  };

  before(async () => {
    t = await createTestApp(kind);
    await seedTutorial(t);
    user = `Bearer ${await login(t.app)}`;
    admin = await adminAuthorization(t);
    await t.database.db.execute(
      sql.raw(
        `alter table myapi.users add constraint log_probe check (name <> '${FORBIDDEN_NAME}')`,
      ),
    );
  });
  after(async () => {
    await t.close();
  });

  it('sends each credential parameter through every kind of route and finds none of them logged', async () => {
    const statuses = new Map<string, Set<number>>();
    const seen = (kind: string, status: number) =>
      statuses.set(kind, (statuses.get(kind) ?? new Set()).add(status));
    for (const parameter of CREDENTIAL_PARAMETERS) {
      const query = () => `?${parameter}=${secret(parameter)}&page=1`;
      const calls: [string, InjectOptions][] = [
        [
          'login',
          {
            method: 'POST',
            url: `/token${query()}`,
            ...form({ username: USER.email, password: USER.password }),
          },
        ],
        [
          'bad login',
          {
            method: 'POST',
            url: `/token${query()}`,
            ...form({ username: USER.email, password: secret('pw') }),
          },
        ],
        ['movie', { method: 'GET', url: `/movies/1${query()}`, headers: { authorization: user } }],
        ['me', { method: 'GET', url: `/users/me${query()}`, headers: { authorization: user } }],
        ['unknown route', { method: 'GET', url: `/no/such/route${query()}` }],
        [
          'invalid',
          {
            method: 'GET',
            url: `/movies/not-a-number${query()}`,
            headers: { authorization: user },
          },
        ],
        [
          'bearer in the header',
          {
            method: 'GET',
            url: `/movies/1${query()}`,
            headers: { authorization: `Bearer ${secret('bearer')}` },
          },
        ],
      ];
      for (const [what, call] of calls) seen(what, (await t.app.inject(call)).statusCode);
    }
    // Statements that fail in the database, with a new user's email and password (hashed into
    // the statement's parameters): a refused row, a NUL byte, a duplicate email.
    const create = async (what: string, name: string, email = `${secret('email')}@example.com`) => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/users',
        headers: { authorization: admin },
        payload: { name, email, password: secret('newpassword') },
      });
      seen(what, response.statusCode);
      return response;
    };
    const refused = await create('refused row', FORBIDDEN_NAME);
    assert.equal(refused.statusCode, 500, refused.body);
    await create('NUL byte', `nul\u0000${secret('nul')}`);
    await create('duplicate', 'dup', USER.email);

    const raw = t.logs.raw.join('\n');
    for (const value of secrets)
      assert.ok(
        !raw.includes(value),
        `${value} leaked:\n${raw
          .split('\n')
          .filter((l) => l.includes(value))
          .join('\n')}`,
      );
    assert.ok(!raw.includes('$argon2'), 'a password hash leaked');
    assert.doesNotMatch(raw, /Failing row|Key \(|params:/);

    // The lines are there, with what an operator needs.
    for (const parameter of CREDENTIAL_PARAMETERS) {
      assert.ok(
        raw.includes(`${parameter}=[redacted]&page=1`),
        `${parameter} not in the access log`,
      );
    }
    const failure = t.logs.lines.find((line) => line.msg === 'request failed');
    const err = (failure?.err ?? {}) as {
      message?: unknown;
      stack?: unknown;
      cause?: { code?: unknown; constraint?: unknown; table?: unknown };
    };
    assert.match(String(err.message), /^Failed query: insert into "myapi"."users"/);
    assert.equal(err.cause?.code, '23514');
    assert.equal(err.cause.constraint, 'log_probe');
    assert.equal(err.cause.table, 'users');
    assert.match(String(err.stack), /caused by: .*violates check constraint "log_probe"/);
    assert.ok(statuses.size >= 9, JSON.stringify([...statuses]));
  });
});
