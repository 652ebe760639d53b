// Forgotten password over HTTP with a real SMTP server: single use, expiry, policy, logins ended, no enumeration.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eq, isNull, sql } from 'drizzle-orm';
import { accountTokens } from '../src/models/account_tokens.js';
import { users } from '../src/models/users.js';
import {
  auditRows,
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
import { codeIn, SmtpServer } from './support/smtp.js';
import { TEST_TIMEOUT_MS } from './support/timeouts.js';

const ALICE = { name: 'alice reset', email: 'alice@myapi.test', password: 'alice old passphrase' };
const NEW_PASSWORD = 'a brand new passphrase';
const SAMPLES = 200;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

describeEachDatabase('password reset', { timeout: TEST_TIMEOUT_MS * 4 }, (kind) => {
  let t: TestDatabase;
  let smtp: SmtpServer;
  let server: AccountsApp;
  let address = 0;
  /** Each test speaks from its own client address, so the throttle's counters stay its own. */
  const from = () => ({
    'x-forwarded-for': `10.1.${Math.floor(address / 250)}.${(address++ % 250) + 1}`,
  });

  async function requestCode(email: string, headers = from()): Promise<string> {
    const before = (await smtp.to(email)).length;
    assert.equal((await server.post('/users/password-reset', { email }, headers)).status, 202);
    const mail = await smtp.waitForCount(email, before + 1);
    return codeIn(mail);
  }

  before(async () => {
    t = await createTestDatabase(kind);
    smtp = await SmtpServer.start();
    await makeUser(t, ALICE);
    server = await listenOn(t, { ...mailSettings(t, smtp), trust_proxy: 'true' });
  });
  after(async () => {
    await server.close();
    await smtp.close();
    await t.close();
  });

  test('known and unknown addresses get the same answer; each gets one mail', async () => {
    const known = await server.post('/users/password-reset', { email: ALICE.email }, from());
    const unknown = await server.post(
      '/users/password-reset',
      { email: 'ghost@myapi.test' },
      from(),
    );
    assert.equal(known.status, 202);
    assert.equal(unknown.status, known.status);
    assert.equal(unknown.text, known.text);
    assert.equal(unknown.headers.get('content-type'), known.headers.get('content-type'));
    const reset = await smtp.waitFor(ALICE.email, /Reset your myapi password/);
    assert.match(reset.text, /for 30 minutes/);
    const notice = await smtp.waitFor('ghost@myapi.test', /No myapi account uses this address/);
    assert.doesNotMatch(notice.text, /code/);
  });

  test('the new password must pass the policy, and a refused one leaves the code usable', async () => {
    const code = await requestCode(ALICE.email);
    const weak = await server.post(
      '/users/password-reset/confirm',
      { token: code, password: 'short' },
      from(),
    );
    assert.equal(weak.status, 422);
    assert.match(String(weak.body?.detail), /at least 8 characters/);
    const tokens = await t.database.db
      .select()
      .from(accountTokens)
      .where(eq(accountTokens.purpose, 'password_reset'));
    assert.ok(tokens.length >= 1);
    for (const row of tokens)
      assert.doesNotMatch(row.token_hash, new RegExp(code), 'stored hashed');
    assert.ok(tokens.some((row) => row.used_at === null));
  });

  test('a reset sets the password, ends every login, spends every code and mails the user', async () => {
    const login = await loginOver(server.url, ALICE.email, ALICE.password);
    assert.equal(login.status, 200);
    const access = String(login.body.access_token);
    const first = await requestCode(ALICE.email);
    const second = await requestCode(ALICE.email);
    const done = await server.post(
      '/users/password-reset/confirm',
      { token: second, password: NEW_PASSWORD },
      from(),
    );
    assert.equal(done.status, 204);
    const me = await fetch(`${server.url}/users/me`, {
      headers: { authorization: `Bearer ${access}` },
    });
    assert.equal(me.status, 401, 'the login from before the reset has ended');
    const refreshed = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: String(login.body.refresh_token),
      }),
    });
    assert.equal(refreshed.status, 400);
    assert.equal((await loginOver(server.url, ALICE.email, ALICE.password)).status, 401);
    assert.equal((await loginOver(server.url, ALICE.email, NEW_PASSWORD)).status, 200);
    const audited = await auditRows(t, 'password.reset');
    assert.deepEqual(audited.at(-1), {
      outcome: 'success',
      reason: null,
      email: ALICE.email,
      details: {},
    });
    const told = await smtp.waitFor(ALICE.email, /password was reset/);
    assert.match(told.text, /every login of the account has ended/);
    for (const token of [second, first]) {
      const again = await server.post(
        '/users/password-reset/confirm',
        { token, password: 'another fine passphrase' },
        from(),
      );
      assert.equal(again.status, 400, 'used, or spent by the reset');
      assert.match(String(again.body?.detail), /invalid, expired or already used/);
    }
  });

  test('an expired or unknown code is refused with the same answer', async () => {
    const code = await requestCode(ALICE.email);
    await t.database.db
      .update(accountTokens)
      .set({ expires_at: sql`now() - interval '1 second'` })
      .where(isNull(accountTokens.used_at));
    const expired = await server.post(
      '/users/password-reset/confirm',
      { token: code, password: 'expired but fine passphrase' },
      from(),
    );
    const unknown = await server.post(
      '/users/password-reset/confirm',
      { token: 'x'.repeat(43), password: 'expired but fine passphrase' },
      from(),
    );
    assert.equal(expired.status, 400);
    assert.equal(unknown.status, 400);
    assert.equal(expired.text, unknown.text);
    assert.equal((await loginOver(server.url, ALICE.email, NEW_PASSWORD)).status, 200);
  });

  test('the throttle covers both endpoints (429 with Retry-After)', async () => {
    const headers = from();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push(
        (await server.post('/users/password-reset', { email: 'flood@myapi.test' }, headers)).status,
      );
    }
    assert.deepEqual(statuses.slice(0, 5), [202, 202, 202, 202, 202]);
    assert.ok(statuses.includes(429), statuses.join());
    const guesses: { status: number; retry: string | null }[] = [];
    const guessHeaders = from();
    for (let i = 0; i < 7; i++) {
      const answer = await server.post(
        '/users/password-reset/confirm',
        { token: 'guessed-code', password: NEW_PASSWORD },
        guessHeaders,
      );
      guesses.push({ status: answer.status, retry: answer.headers.get('retry-after') });
    }
    assert.deepEqual(
      guesses.slice(0, 5).map((g) => g.status),
      [400, 400, 400, 400, 400],
    );
    const refused = guesses.find((g) => g.status === 429);
    assert.ok(refused !== undefined, guesses.map((g) => g.status).join());
    assert.match(refused.retry ?? '', /^[1-9][0-9]*$/);
  });

  test(`a request takes the same time for a known and an unknown address (${SAMPLES} samples each)`, async () => {
    // Distinct addresses and clients per sample: the throttle then adds no wait to either side.
    const [row] = await t.database.db.select().from(users).where(eq(users.email, ALICE.email));
    assert.ok(row !== undefined);
    await t.database.db.insert(users).values(
      Array.from({ length: SAMPLES }, (_, i) => ({
        name: `timing ${i}`,
        email: `timing-${i}@myapi.test`,
        hashed_password: row.hashed_password,
      })),
    );
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 10; i++) {
      await server.post('/users/password-reset', { email: `warmup-${i}@myapi.test` }, from());
    }
    for (let i = 0; i < SAMPLES; i++) {
      // Alternated, so a slow moment of the machine falls on both sides alike.
      for (const [list, email] of [
        [known, `timing-${i}@myapi.test`],
        [unknown, `nobody-${i}@myapi.test`],
      ] as const) {
        const started = performance.now();
        const answer = await server.post('/users/password-reset', { email }, from());
        list.push(performance.now() - started);
        assert.equal(answer.status, 202);
      }
    }
    const knownMedian = median(known);
    const unknownMedian = median(unknown);
    const difference = Math.abs(knownMedian - unknownMedian);
    const tolerance = Math.max(2, 0.25 * Math.max(knownMedian, unknownMedian));
    console.log(
      `# reset request timing (${kind}, ${SAMPLES} samples each): known median ${knownMedian.toFixed(2)} ms, ` +
        `unknown median ${unknownMedian.toFixed(2)} ms, difference ${difference.toFixed(2)} ms ` +
        `(tolerance ${tolerance.toFixed(2)} ms)`,
    );
    assert.ok(difference <= tolerance, `medians ${knownMedian} vs ${unknownMedian}`);
  });
});
