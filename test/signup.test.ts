// Sign-up, invitations and the first email verification over HTTP, with a real SMTP server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { users } from '../src/models/users.js';
import {
  auditRows,
  bearer,
  from,
  loginOver,
  makeUser,
  median,
  withServer,
} from './support/accounts.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { runCommand, tempDir } from './support/process.js';
import { codeIn, SmtpServer } from './support/smtp.js';
import { TEST_TIMEOUT_MS } from './support/timeouts.js';

const ADMIN = {
  name: 'admin',
  email: 'admin@myapi.test',
  password: 'admin long passphrase',
  is_superuser: true,
};
const OWNER = { name: 'owner', email: 'owner@myapi.test', password: 'owner long passphrase' };

const SIGNUP_SAMPLES = 40;

describeEachDatabase('sign-up', { timeout: TEST_TIMEOUT_MS * 3 }, (kind) => {
  let t: TestDatabase;
  let smtp: SmtpServer;

  before(async () => {
    t = await createTestDatabase(kind);
    smtp = await SmtpServer.start();
    await makeUser(t, ADMIN);
    await makeUser(t, OWNER);
  });
  after(async () => {
    await smtp.close();
    await t.close();
  });

  test('closed by default: 403, and no account is made', async () => {
    await withServer(t, smtp, {}, async (server) => {
      const answer = await server.post(
        '/users/signup',
        { name: 'x', email: 'closed@myapi.test', password: 'a fine passphrase' },
        from(),
      );
      assert.equal(answer.status, 403);
      assert.equal(answer.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(answer.body?.detail, 'Sign-up is closed');
      assert.equal(
        (await t.database.db.select().from(users).where(eq(users.email, 'closed@myapi.test')))
          .length,
        0,
      );
    });
  });

  test('open: a new account must confirm its address before logging in when the setting says so', async () => {
    const changes = {
      signup: 'open' as const,
      accounts: { ...t.settings.accounts, require_verified_email: true },
    };
    await withServer(t, smtp, changes, async (server) => {
      const weak = await server.post(
        '/users/signup',
        { name: 'new', email: 'new@myapi.test', password: 'new@myapi.test' },
        from(),
      );
      assert.equal(weak.status, 422);
      const answer = await server.post(
        '/users/signup',
        { name: 'New Person', email: 'New@MyApi.test', password: 'new person passphrase' },
        from(),
      );
      assert.equal(answer.status, 202);
      const mail = await smtp.waitFor('new@myapi.test', /Confirm your email address/);
      const code = codeIn(mail);
      assert.match(mail.text, /Hello New Person/);
      const refused = await loginOver(server.url, 'new@myapi.test', 'new person passphrase');
      assert.equal(refused.status, 401);
      assert.match(String(refused.body.detail), /Confirm your email address first/);
      const wrong = await loginOver(server.url, 'new@myapi.test', 'not the passphrase');
      assert.equal(
        wrong.body.detail,
        'Incorrect username or password',
        'the unverified state shows only after the right password',
      );
      assert.equal((await server.post('/users/verify-email', { token: code })).status, 204);
      const reused = await server.post('/users/verify-email', { token: code });
      assert.equal(reused.status, 400);
      assert.match(String(reused.body?.detail), /invalid, expired or already used/);
      assert.equal(
        (await loginOver(server.url, 'new@myapi.test', 'new person passphrase')).status,
        200,
      );
      const operatorMade = await loginOver(server.url, OWNER.email, OWNER.password);
      assert.equal(operatorMade.status, 200, 'accounts made by an operator count as verified');
    });
  });

  test('an address that has an account gets the same answer, and its owner the mail', async () => {
    await withServer(t, smtp, { signup: 'open' }, async (server) => {
      const fresh = await server.post(
        '/users/signup',
        { name: 'fresh', email: 'fresh@myapi.test', password: 'fresh long passphrase' },
        from(),
      );
      const taken = await server.post(
        '/users/signup',
        { name: 'intruder', email: 'OWNER@myapi.test', password: 'intruder passphrase' },
        from(),
      );
      assert.equal(taken.status, fresh.status);
      assert.equal(taken.text, fresh.text);
      assert.equal(taken.headers.get('content-type'), fresh.headers.get('content-type'));
      const notice = await smtp.waitFor(OWNER.email, /Your address was used to sign up/);
      assert.match(notice.text, /Hello owner/);
      assert.equal((await loginOver(server.url, OWNER.email, OWNER.password)).status, 200);
      assert.equal((await loginOver(server.url, OWNER.email, 'intruder passphrase')).status, 401);
      // The log tells the two apart, in the same transactions as the changes; no password in it.
      const audited = await auditRows(t, 'signup');
      assert.deepEqual(audited.slice(-2), [
        {
          outcome: 'success',
          reason: null,
          email: 'fresh@myapi.test',
          details: { invited: false },
        },
        { outcome: 'failure', reason: 'address taken', email: OWNER.email, details: {} },
      ]);
    });
  });

  test('sign-up takes the same time for a new and a taken address', async () => {
    await withServer(t, smtp, { signup: 'open' }, async (server) => {
      const fresh: number[] = [];
      const taken: number[] = [];
      const timed = async (list: number[], email: string) => {
        const started = performance.now();
        const answer = await server.post(
          '/users/signup',
          { name: 'timing', email, password: 'timing long passphrase' },
          from(),
        );
        list.push(performance.now() - started);
        assert.equal(answer.status, 202);
      };
      for (let i = 0; i < 3; i++) await timed([], `warmup-signup-${i}@myapi.test`);
      for (let i = 0; i < SIGNUP_SAMPLES; i++) {
        // Each taken address once, so the throttle's per-address counters never wait.
        await timed(fresh, `signup-fresh-${i}@myapi.test`);
        await timed(taken, `signup-fresh-${i}@myapi.test`);
      }
      const [freshMedian, takenMedian] = [median(fresh), median(taken)];
      const difference = Math.abs(freshMedian - takenMedian);
      const tolerance = Math.max(10, 0.3 * Math.max(freshMedian, takenMedian));
      console.log(
        `# sign-up timing (${kind}, ${SIGNUP_SAMPLES} samples each): new ${freshMedian.toFixed(2)} ms, ` +
          `taken ${takenMedian.toFixed(2)} ms, difference ${difference.toFixed(2)} ms (tolerance ${tolerance.toFixed(2)} ms)`,
      );
      assert.ok(difference <= tolerance, `medians ${freshMedian} vs ${takenMedian}`);
    });
  });

  test('invite: sign-up needs an invitation, issued by an admin, used once, for its address', async () => {
    await withServer(t, smtp, { signup: 'invite' }, async (server) => {
      const without = await server.post(
        '/users/signup',
        { name: 'guest', email: 'guest@myapi.test', password: 'guest long passphrase' },
        from(),
      );
      assert.equal(without.status, 403);
      const user = await bearer(server, OWNER.email, OWNER.password);
      assert.equal(
        (
          await server.post(
            '/users/invitations',
            { email: 'guest@myapi.test' },
            { authorization: user },
          )
        ).status,
        403,
      );
      const admin = await bearer(server, ADMIN.email, ADMIN.password);
      const issued = await server.post(
        '/users/invitations',
        { email: 'Guest@myapi.test' },
        { authorization: admin },
      );
      assert.equal(issued.status, 201);
      assert.equal(issued.body?.email, 'guest@myapi.test');
      assert.equal(
        (await server.post('/users/invitations', { email: OWNER.email }, { authorization: admin }))
          .status,
        409,
      );
      const code = codeIn(await smtp.waitFor('guest@myapi.test', /You are invited/));
      const elsewhere = await server.post(
        '/users/signup',
        {
          name: 'other',
          email: 'other@myapi.test',
          password: 'other long passphrase',
          invitation: code,
        },
        from(),
      );
      assert.equal(elsewhere.status, 400, 'an invitation is for its own address');
      const joined = await server.post(
        '/users/signup',
        {
          name: 'guest',
          email: 'guest@myapi.test',
          password: 'guest long passphrase',
          invitation: code,
        },
        from(),
      );
      assert.equal(joined.status, 202);
      const [row] = await t.database.db
        .select()
        .from(users)
        .where(eq(users.email, 'guest@myapi.test'));
      assert.ok(row?.email_verified_at instanceof Date, 'the invitation proved the address');
      const again = await server.post(
        '/users/signup',
        {
          name: 'guest2',
          email: 'guest@myapi.test',
          password: 'guest long passphrase',
          invitation: code,
        },
        from(),
      );
      assert.equal(again.status, 400);
    });
  });
});

describeEachDatabase(
  'myapi invite',
  { kinds: ['postgres'], timeout: TEST_TIMEOUT_MS * 2 },
  (kind) => {
    describe('the command line', () => {
      let t: TestDatabase;
      let smtp: SmtpServer;
      before(async () => {
        t = await createTestDatabase(kind);
        smtp = await SmtpServer.start();
      });
      after(async () => {
        await smtp.close();
        await t.close();
      });

      test('queues an invitation that the server sends', async () => {
        const cwd = tempDir();
        const env = { MYAPI_DATABASE__DSN: t.dsn, MYAPI_TOKEN_KEY: 'k'.repeat(40) };
        const closed = await runCommand(['invite', 'cli@myapi.test'], { cwd, env });
        assert.equal(closed.code, 1);
        assert.match(closed.stderr, /myapi: error: Sign-up is closed/);
        const done = await runCommand(['invite', 'cli@myapi.test'], {
          cwd,
          env: { ...env, MYAPI_SIGNUP: 'invite' },
        });
        assert.equal(done.code, 0, done.stderr);
        assert.match(
          done.stdout,
          /^invited cli@myapi\.test \(valid until .+\); the mail is queued\n$/,
        );
        await withServer(t, smtp, { signup: 'invite' }, async () => {
          const mail = await smtp.waitFor('cli@myapi.test', /You are invited/);
          assert.match(mail.text, /for 7 days/);
        });
      });
    });
  },
);
