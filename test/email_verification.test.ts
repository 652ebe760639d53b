// Email verification (resend, expiry) and the change of address over HTTP, with a real SMTP server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eq, sql } from 'drizzle-orm';
import { accountTokens } from '../src/models/account_tokens.js';
import { auditRows, bearer, from, loginOver, makeUser, withServer } from './support/accounts.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { codeIn, SmtpServer } from './support/smtp.js';
import { TEST_TIMEOUT_MS } from './support/timeouts.js';

const OWNER = { name: 'owner', email: 'owner@myapi.test', password: 'owner long passphrase' };

describeEachDatabase('email verification', { timeout: TEST_TIMEOUT_MS * 3 }, (kind) => {
  let t: TestDatabase;
  let smtp: SmtpServer;

  before(async () => {
    t = await createTestDatabase(kind);
    smtp = await SmtpServer.start();
    await makeUser(t, OWNER);
  });
  after(async () => {
    await smtp.close();
    await t.close();
  });

  test('resend: one mail whatever the state, the same answer, and a rate limit', async () => {
    await withServer(t, smtp, { signup: 'open' }, async (server) => {
      await server.post(
        '/users/signup',
        { name: 'late', email: 'late@myapi.test', password: 'late long passphrase' },
        from(),
      );
      const first = codeIn(await smtp.waitForCount('late@myapi.test', 1));
      const answers = [];
      for (const email of ['late@myapi.test', OWNER.email, 'unknown-resend@myapi.test']) {
        answers.push(await server.post('/users/verify-email/resend', { email }, from()));
      }
      for (const answer of answers) {
        assert.equal(answer.status, 202);
        assert.equal(answer.text, answers[0]?.text);
      }
      const second = codeIn(await smtp.waitForCount('late@myapi.test', 2));
      assert.notEqual(second, first);
      await smtp.waitFor(OWNER.email, /already confirmed/);
      await smtp.waitFor('unknown-resend@myapi.test', /No myapi account/);
      // Expired: refused like an unknown code.
      await t.database.db
        .update(accountTokens)
        .set({ expires_at: sql`now() - interval '1 second'` })
        .where(eq(accountTokens.email, 'late@myapi.test'));
      const expired = await server.post('/users/verify-email', { token: second });
      assert.equal(expired.status, 400);
      assert.equal(
        expired.text,
        (await server.post('/users/verify-email', { token: 'y'.repeat(43) })).text,
      );
      const headers = from();
      const statuses = [];
      for (let i = 0; i < 7; i++) {
        statuses.push(
          (await server.post('/users/verify-email/resend', { email: 'late@myapi.test' }, headers))
            .status,
        );
      }
      assert.ok(statuses.includes(429), statuses.join());
    });
  });

  test('an address change takes effect once the new address confirms it; the old one is told', async () => {
    await makeUser(t, {
      name: 'mover',
      email: 'mover@myapi.test',
      password: 'mover long passphrase',
    });
    await withServer(t, smtp, {}, async (server) => {
      const authorization = await bearer(server, 'mover@myapi.test', 'mover long passphrase');
      const headers = { authorization, ...from() };
      const wrong = await server.post(
        '/users/me/email',
        { email: 'moved@myapi.test', password: 'wrong' },
        headers,
      );
      assert.equal(wrong.status, 403);
      const taken = await server.post(
        '/users/me/email',
        { email: OWNER.email, password: 'mover long passphrase' },
        headers,
      );
      const asked = await server.post(
        '/users/me/email',
        { email: 'moved@myapi.test', password: 'mover long passphrase' },
        headers,
      );
      assert.equal(asked.status, 202);
      assert.equal(taken.text, asked.text, 'a taken address is not told apart');
      const code = codeIn(await smtp.waitFor('moved@myapi.test', /Confirm your new email address/));
      assert.equal(
        (await loginOver(server.url, 'mover@myapi.test', 'mover long passphrase')).status,
        200,
        'unchanged until confirmed',
      );
      assert.equal((await server.post('/users/verify-email', { token: code })).status, 204);
      assert.deepEqual((await auditRows(t, 'email.change')).at(-1), {
        outcome: 'success',
        reason: null,
        email: 'moved@myapi.test',
        details: { from: 'mover@myapi.test', to: 'moved@myapi.test' },
      });
      const told = await smtp.waitFor(
        'mover@myapi.test',
        /email address of your myapi account changed/,
      );
      assert.match(told.text, /moved@myapi\.test/);
      const me = await fetch(`${server.url}/users/me`, { headers: { authorization } });
      assert.equal(me.status, 401, 'logins end with the change');
      assert.equal(
        (await loginOver(server.url, 'mover@myapi.test', 'mover long passphrase')).status,
        401,
      );
      assert.equal(
        (await loginOver(server.url, 'moved@myapi.test', 'mover long passphrase')).status,
        200,
      );
      assert.equal((await server.post('/users/verify-email', { token: code })).status, 400);
    });
  });
});
