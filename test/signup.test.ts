// Sign-up, invitations, email verification and address change over HTTP, with a real SMTP server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eq, sql } from 'drizzle-orm';
import { accountTokens } from '../src/models/account_tokens.js';
import { users } from '../src/models/users.js';
import {
  listenOn,
  loginOver,
  mailSettings,
  makeUser,
  type AccountsApp,
} from './support/accounts.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { runCommand, tempDir } from './support/process.js';
import { codeIn, SmtpServer } from './support/smtp.js';
import { TEST_TIMEOUT_MS } from './support/timeouts.js';
import type { Settings } from '../src/backend/config.js';

const ADMIN = {
  name: 'admin',
  email: 'admin@myapi.test',
  password: 'admin long passphrase',
  is_superuser: true,
};
const OWNER = { name: 'owner', email: 'owner@myapi.test', password: 'owner long passphrase' };

const SIGNUP_SAMPLES = 40;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

let address = 0;
/** A client address per request group, so the throttle's counters belong to one test. */
const from = () => ({
  'x-forwarded-for': `10.2.${Math.floor(address / 250)}.${(address++ % 250) + 1}`,
});

async function withServer(
  t: TestDatabase,
  smtp: SmtpServer,
  changes: Partial<Settings>,
  work: (server: AccountsApp) => Promise<void>,
): Promise<void> {
  const server = await listenOn(t, { ...mailSettings(t, smtp), trust_proxy: 'true', ...changes });
  try {
    await work(server);
  } finally {
    await server.close();
  }
}

async function bearer(server: AccountsApp, email: string, password: string): Promise<string> {
  const login = await loginOver(server.url, email, password);
  assert.equal(login.status, 200, JSON.stringify(login.body));
  return `Bearer ${String(login.body.access_token)}`;
}

describeEachDatabase('sign-up and email verification', { timeout: TEST_TIMEOUT_MS * 3 }, (kind) => {
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
    });
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
