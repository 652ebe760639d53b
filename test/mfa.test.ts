import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { loadSettings } from '../src/backend/config.js';
import { openDatabase } from '../src/backend/database.js';
import { mfaChallenges } from '../src/models/mfa.js';
import { MFA_OTP_GRANT, MFA_RECOVERY_GRANT } from '../src/services/auth.js';
import type { AuditRecord } from '../src/services/audit/index.js';
import { accountOptions, createServices } from '../src/services/index.js';
import { MFA_TOKEN_ATTEMPTS, MfaService, SecretBox } from '../src/services/mfa/index.js';
import {
  createServerDatabase,
  createTestApp,
  databaseKinds,
  describeEachDatabase,
  TOKEN_KEY,
  type TestApp,
} from './support/databases.js';
import { accounts, ADMIN } from './support/http.js';
import { delay, runCommand, scaled, tempDir } from './support/process.js';
import { listening, type Call, type Reply } from './support/socket_http.js';

/** The current TOTP code, or the one `offset` seconds away, from Debian's oathtool. */
function oathtool(secret: string, offset = 0): string {
  const args = ['--totp', '-b', ...(offset === 0 ? [] : ['-N', `now + ${offset} seconds`]), secret];
  return execFileSync('oathtool', args, { encoding: 'utf8' }).trim();
}

interface Problem {
  error?: string;
  mfa_token?: string;
  detail: string;
}

const PASSWORD = 'a long and unusual passphrase';

/**
 * TOTP two-factor over HTTP on a real socket, checked against oathtool: enrolment, confirmation
 * with recovery codes, the mfa_required answer and the second grant, replayed codes, brute force
 * per mfa_token and per user, expired tokens, single-use recovery codes, disabling.
 */
describeEachDatabase('two-factor authentication', (kind) => {
  let t: TestApp;
  let call: Call;
  let admin: string;
  let serial = 0;

  const passwordGrant = (email: string) =>
    call('POST', '/token', { form: { username: email, password: PASSWORD } });

  /** The mfa_token of a password grant that must ask for the second factor. */
  const mfaToken = async (email: string): Promise<string> => {
    const reply = await passwordGrant(email);
    assert.equal(reply.status, 400, reply.text);
    assert.equal(reply.headers.get('content-type'), 'application/json; charset=utf-8');
    const body = reply.body as Problem;
    assert.equal(body.error, 'mfa_required');
    assert.match(body.mfa_token ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!('access_token' in body));
    return body.mfa_token ?? '';
  };

  const otpGrant = (token: string, otp: string) =>
    call('POST', '/token', { form: { grant_type: MFA_OTP_GRANT, mfa_token: token, otp } });
  const recoveryGrant = (token: string, code: string) =>
    call('POST', '/token', {
      form: { grant_type: MFA_RECOVERY_GRANT, mfa_token: token, recovery_code: code },
    });

  const events = async (userId: number, event: string) =>
    (await call('GET', `/audit?user_id=${userId}&event=${event}`, { authorization: admin }))
      .body as AuditRecord[];

  /** A new user with two-factor on: its id, bearer, TOTP secret and recovery codes. */
  const enrolled = async () => {
    serial++;
    const email = `mfa${serial}@myapi.com`;
    const user = await accounts(t).users.createUser({
      name: `mfa ${serial}`,
      email,
      password: PASSWORD,
    });
    const login = await passwordGrant(email);
    assert.equal(login.status, 200, login.text);
    const bearer = `Bearer ${(login.body as { access_token: string }).access_token}`;
    const enrolment = await call('POST', '/users/me/mfa/totp', { authorization: bearer });
    assert.equal(enrolment.status, 201, enrolment.text);
    const { secret, otpauth_uri, qr_svg } = enrolment.body as Record<string, string>;
    assert.match(secret ?? '', /^[A-Z2-7]{32}$/);
    assert.match(otpauth_uri ?? '', /^otpauth:\/\/totp\/myapi:mfa[0-9]+%40myapi\.com\?/);
    assert.ok(otpauth_uri?.includes(`secret=${secret}`));
    assert.match(qr_svg ?? '', /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    const wrong = await call('POST', '/users/me/mfa/totp/confirm', {
      authorization: bearer,
      json: { code: oathtool(secret ?? '', 3600) },
    });
    assert.equal(wrong.status, 403, wrong.text);
    const confirmed = await call('POST', '/users/me/mfa/totp/confirm', {
      authorization: bearer,
      json: { code: oathtool(secret ?? '') },
    });
    assert.equal(confirmed.status, 200, confirmed.text);
    const codes = (confirmed.body as { recovery_codes: string[] }).recovery_codes;
    return { id: user.user_id, email, bearer, secret: secret ?? '', codes };
  };

  before(async () => {
    t = await createTestApp(kind);
    ({ call } = await listening(t.app));
    await accounts(t).users.createUser(ADMIN);
    const reply = await call('POST', '/token', {
      form: { username: ADMIN.email, password: ADMIN.password },
    });
    admin = `Bearer ${(reply.body as { access_token: string }).access_token}`;
  });
  after(async () => {
    await t.close();
  });

  it('enrols with a QR code, confirms with a code from oathtool and gives ten recovery codes', async () => {
    const user = await enrolled();
    assert.equal(user.codes.length, 10);
    assert.equal(new Set(user.codes).size, 10);
    for (const code of user.codes) assert.match(code, /^[a-z2-9]{5}-[a-z2-9]{5}$/);
    const status = await call('GET', '/users/me/mfa', { authorization: user.bearer });
    assert.deepEqual(status.body, { enabled: true, recovery_codes_left: 10 });
    const again = await call('POST', '/users/me/mfa/totp', { authorization: user.bearer });
    assert.equal(again.status, 409);
    assert.equal(
      (await events(user.id, 'mfa.confirm')).map((e) => e.outcome).join(),
      'success,failure',
    );
    // The secret reaches neither the log nor the database in clear.
    assert.ok(!t.logs.raw.some((line) => line.includes(user.secret)));
    const rows = await t.database.db.execute(sql`select secret_sealed from myapi.mfa_factors`);
    assert.ok(!JSON.stringify(rows).includes(user.secret));
  });

  it('asks for the second factor, completes the login, and refuses the same code again', async () => {
    const user = await enrolled();
    // Confirmation spent the current step: the next step's code (within the window) logs in.
    const code = oathtool(user.secret, 30);
    const challenge = await mfaToken(user.email);
    const done = await otpGrant(challenge, code);
    assert.equal(done.status, 200, done.text);
    const token = done.body as { access_token: string; refresh_token: string };
    const me = await call('GET', '/users/me', { authorization: `Bearer ${token.access_token}` });
    assert.equal(me.status, 200);

    const replay = await otpGrant(await mfaToken(user.email), code);
    assert.equal(replay.status, 400);
    assert.equal((replay.body as Problem).error, 'invalid_grant');
    const uses = await events(user.id, 'mfa.use');
    assert.deepEqual(
      uses.map((e) => [e.outcome, e.reason]),
      [
        ['failure', 'replayed_code'],
        ['success', null],
      ],
    );
    // Neither the mfa_token, the secret nor a recovery code reaches a log line or the database.
    await delay(100);
    // (A six-digit code may turn up in any timestamp by chance: the form fields are looked for.)
    assert.ok(
      !t.logs.raw.some((line) => /\botp=|"otp"|recovery_code=|mfa_token=|"mfa_token"/.test(line)),
    );
    const secrets = [challenge, user.secret, ...user.codes];
    for (const secret of secrets) {
      assert.ok(!t.logs.raw.some((line) => line.includes(secret)), 'a log line holds a secret');
    }
    const stored = JSON.stringify(
      await t.database.db.execute(
        sql`select (select json_agg(c) from myapi.mfa_challenges c)::text as c,
          (select json_agg(r) from myapi.mfa_recovery_codes r)::text as r,
          (select json_agg(a) from myapi.audit_events a)::text as a`,
      ),
    );
    for (const secret of secrets)
      assert.ok(!stored.includes(secret), 'the database holds a secret');
    const logins = await events(user.id, 'login');
    assert.equal(logins[0]?.details.mfa, 'totp');
  });

  it('spends an mfa_token after a few wrong codes, and slows a user down across tokens', async () => {
    const user = await enrolled();
    const token = await mfaToken(user.email);
    // Asked for now, not after the wrong codes: a password grant hashes, which on a busy machine
    // can take longer than the first wait (1 s), and the wait would be over before the code.
    const fresh = await mfaToken(user.email);
    let last: Reply | undefined;
    for (let i = 0; i < MFA_TOKEN_ATTEMPTS; i++) {
      last = await otpGrant(token, String(100_000 + i));
      assert.equal(last.status, 400, last.text);
    }
    const good = oathtool(user.secret, 30);
    const spent = await otpGrant(token, good);
    assert.equal(spent.status, 400);
    assert.match((spent.body as Problem).detail, /invalid, expired or already used/);

    // Five wrong codes for the user: the next code, on another token, must wait.
    const slowed = await otpGrant(fresh, good);
    assert.equal(slowed.status, 429, slowed.text);
    assert.equal(slowed.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal((slowed.body as Problem).error, 'slow_down');
    const wait = Number(slowed.headers.get('retry-after'));
    assert.ok(wait >= 1);
    await delay(wait * 1000 + 100);
    const through = await otpGrant(fresh, good);
    assert.equal(through.status, 200, through.text);
  });

  it('refuses an expired mfa_token and an unknown one', async () => {
    const user = await enrolled();
    const token = await mfaToken(user.email);
    await t.database.db
      .update(mfaChallenges)
      .set({ expires_at: sql`now() - interval '1 second'` })
      .where(sql`${mfaChallenges.user_id} = ${user.id}`);
    const expired = await otpGrant(token, oathtool(user.secret, 30));
    assert.equal(expired.status, 400);
    assert.equal((expired.body as Problem).error, 'invalid_grant');
    const unknown = await otpGrant('x'.repeat(43), oathtool(user.secret, 30));
    assert.equal(unknown.status, 400);
    const missing = await call('POST', '/token', { form: { grant_type: MFA_OTP_GRANT } });
    assert.equal((missing.body as Problem).error, 'invalid_request');
  });

  it('accepts each recovery code once, and disabling needs a code', async () => {
    const user = await enrolled();
    const [first, second] = user.codes;
    assert.ok(first !== undefined && second !== undefined);
    const ok = await recoveryGrant(await mfaToken(user.email), first.toUpperCase());
    assert.equal(ok.status, 200, ok.text);
    const reused = await recoveryGrant(await mfaToken(user.email), first);
    assert.equal(reused.status, 400);
    const status = await call('GET', '/users/me/mfa', { authorization: user.bearer });
    assert.deepEqual(status.body, { enabled: true, recovery_codes_left: 9 });

    const refused = await call('DELETE', '/users/me/mfa/totp', {
      authorization: user.bearer,
      json: { code: 'aaaaa-bbbbb' },
    });
    assert.equal(refused.status, 403);
    const off = await call('DELETE', '/users/me/mfa/totp', {
      authorization: user.bearer,
      json: { code: second },
    });
    assert.equal(off.status, 204, off.text);
    assert.equal((await passwordGrant(user.email)).status, 200, 'the password alone logs in again');
    assert.equal((await events(user.id, 'mfa.disable'))[0]?.outcome, 'success');
  });
});

/** `myapi mfa reset EMAIL` as an operator runs it, on an embedded and a PostgreSQL database. */
describe('myapi mfa reset', { concurrency: true }, () => {
  const targets = databaseKinds().includes('postgres') ? ['embedded', 'postgres'] : ['embedded'];
  for (const target of targets) {
    it(`turns off a user's factor on ${target}`, { timeout: scaled(240_000) }, async () => {
      const cwd = tempDir();
      const server = target === 'postgres' ? await createServerDatabase() : undefined;
      const env: Record<string, string> =
        server === undefined ? {} : { MYAPI_DATABASE__DSN: server.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
      const run = (args: string[]) => runCommand(args, { cwd, env, timeoutMs: scaled(60_000) });
      try {
        if (server !== undefined) {
          const migrated = await run(['migrate']);
          assert.equal(migrated.code, 0, migrated.stderr);
        }
        const created = await run([
          'create-user',
          '--name',
          'phone lost',
          '--email',
          'lost@myapi.com',
          '--password',
          PASSWORD,
        ]);
        assert.equal(created.code, 0, created.stderr);
        const dsn = server?.dsn ?? `pglite:${cwd}/.myapi/pgdata`;
        const { settings } = loadSettings({
          env: { MYAPI_DATABASE__DSN: dsn, MYAPI_TOKEN_KEY: TOKEN_KEY },
          cwd,
        });
        const open = async () => openDatabase(settings, { role: 'tool' });
        let database = await open();
        const services = createServices(database, { accounts: accountOptions(settings) });
        const user = await services.users.getByEmail('lost@myapi.com');
        const mfa = new MfaService(database, new SecretBox(TOKEN_KEY));
        const { secret } = await mfa.enrol(
          { userId: user.user_id, email: user.email },
          { address: 'test' },
        );
        await mfa.confirm(user.user_id, oathtool(secret), { address: 'test' });
        assert.equal(await mfa.enrolled(user.user_id), true);
        await database.close();

        const reset = await run(['mfa', 'reset', 'LOST@myapi.com']);
        assert.equal(reset.code, 0, reset.stderr);
        assert.equal(reset.stdout, 'two-factor authentication reset for lost@myapi.com\n');
        const again = await run(['mfa', 'reset', 'lost@myapi.com']);
        assert.match(again.stdout, /nothing to reset/);
        const nobody = await run(['mfa', 'reset', 'nobody@myapi.com']);
        assert.equal(nobody.code, 1);
        assert.match(nobody.stderr, /no user with email nobody@myapi.com/);

        database = await open();
        try {
          assert.equal(await new MfaService(database).enrolled(user.user_id), false);
          const audit = await createServices(database, {
            accounts: accountOptions(settings),
          }).audit.list({ userId: user.user_id, event: 'mfa.reset' }, 10);
          assert.equal(audit.events.length, 1);
          assert.equal(audit.events[0]?.actor_id, null);
        } finally {
          await database.close();
        }
      } finally {
        await server?.drop();
      }
    });
  }
});
