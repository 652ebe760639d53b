// The mail outbox and its sender against a real SMTP server (aiosmtpd): delivery, retries, give-up, dev mode.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  listenOn,
  mailSettings,
  makeUser,
  outboxRows,
  type AccountsApp,
} from './support/accounts.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { delay } from './support/process.js';
import { codeIn, SmtpServer } from './support/smtp.js';
import { scaled, TEST_TIMEOUT_MS } from './support/timeouts.js';

const OWNER = { name: 'mail owner', email: 'owner@myapi.test', password: 'a long passphrase 1' };

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + scaled(15_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

describeEachDatabase('mail outbox', { timeout: TEST_TIMEOUT_MS * 3 }, (kind) => {
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

  test('a mail leaves through SMTP with text and HTML bodies, then its row keeps no body', async () => {
    const server = await listenOn(t, mailSettings(t, smtp));
    try {
      const answer = await server.post('/users/password-reset', { email: OWNER.email });
      assert.equal(answer.status, 202);
      const mail = await smtp.waitFor(OWNER.email, /Reset your myapi password/);
      assert.match(mail.from, /no-reply@myapi\.test/);
      const code = codeIn(mail);
      assert.match(mail.text, /It works once, for 30 minutes/);
      // Mustache escapes every value in HTML (/ and = too); a browser reads the entities back.
      const html = mail.html.replace(/&#x([0-9A-F]+);/gi, (_, hex: string) =>
        String.fromCodePoint(parseInt(hex, 16)),
      );
      assert.ok(
        html.includes(`href="https://app.myapi.test/account/reset-password?token=${code}"`),
      );
      const row = await until('the row marked sent', async () =>
        (await outboxRows(t)).find((r) => r.sent_at !== null && r.kind === 'password_reset'),
      );
      assert.equal(row.text_body, null);
      assert.equal(row.html_body, null);
      assert.equal(row.attempts, 1);
    } finally {
      await server.close();
    }
  });

  test('SMTP down: retried with back-off and logged without the body; delivered once it is back', async () => {
    const server = await listenOn(t, mailSettings(t, smtp, { max_attempts: 50 }));
    try {
      await smtp.pause();
      const before = (await smtp.to('nobody-yet@myapi.test')).length;
      assert.equal(before, 0);
      assert.equal(
        (await server.post('/users/password-reset', { email: 'nobody-yet@myapi.test' })).status,
        202,
      );
      const failing = await until('two failed attempts', async () =>
        (await outboxRows(t)).find(
          (r) => r.recipient === 'nobody-yet@myapi.test' && r.attempts >= 2 && r.sent_at === null,
        ),
      );
      assert.match(failing.last_error ?? '', /ECONNREFUSED/);
      assert.notEqual(failing.text_body, null, 'a mail waiting for a retry keeps its body');
      const warnings = server.logs.lines.filter((l) => l.msg === 'mail not delivered; will retry');
      assert.ok(warnings.length >= 1);
      const retries = warnings.map((l) => Number(l.retryInSeconds));
      assert.ok(retries.length < 2 || (retries[1] ?? 0) > (retries[0] ?? 0), 'the wait grows');
      for (const raw of server.logs.raw) assert.ok(!raw.includes('no account uses this address'));
      await smtp.resume();
      const mail = await smtp.waitFor('nobody-yet@myapi.test', /No myapi account uses/);
      assert.match(mail.text, /password reset/);
      const sent = await until('the row marked sent', async () =>
        (await outboxRows(t)).find((r) => r.mail_id === failing.mail_id && r.sent_at !== null),
      );
      assert.equal(sent.failed_at, null);
    } finally {
      await server.close();
    }
  });

  test('after the last attempt the mail is kept, marked failed, and logged as an error', async () => {
    await smtp.pause();
    const server = await listenOn(t, mailSettings(t, smtp, { max_attempts: 2 }));
    try {
      await server.post('/users/password-reset', { email: 'given-up@myapi.test' });
      const failed = await until('the row marked failed', async () =>
        (await outboxRows(t)).find(
          (r) => r.recipient === 'given-up@myapi.test' && r.failed_at !== null,
        ),
      );
      assert.equal(failed.attempts, 2);
      assert.equal(failed.sent_at, null);
      assert.equal(failed.text_body, null);
      const error = server.logs.lines.find(
        (l) => l.msg === 'mail not delivered: gave up after the last attempt',
      );
      assert.equal(error?.level, 50);
      assert.equal(error.mailId, failed.mail_id);
    } finally {
      await server.close();
      await smtp.resume();
    }
  });

  test('two processes share the outbox: every mail leaves exactly once', async () => {
    const first = await listenOn(t, mailSettings(t, smtp));
    const second = await listenOn(t, mailSettings(t, smtp));
    try {
      const addresses = Array.from({ length: 12 }, (_, i) => `shared-${i}@myapi.test`);
      for (const [i, email] of addresses.entries()) {
        const server = i % 2 === 0 ? first : second;
        assert.equal((await server.post('/users/password-reset', { email })).status, 202);
      }
      for (const email of addresses) await smtp.waitFor(email, /No myapi account/);
      await delay(scaled(500));
      for (const email of addresses) assert.equal((await smtp.to(email)).length, 1, email);
      const delivered = [first, second].map(
        (s) => s.logs.lines.filter((l) => l.msg === 'mail delivered').length,
      );
      assert.equal((delivered[0] ?? 0) + (delivered[1] ?? 0), addresses.length);
    } finally {
      await first.close();
      await second.close();
    }
  });

  test('templates from MYAPI_MAIL__TEMPLATES_DIR replace the shipped ones, file by file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'myapi-templates-'));
    writeFileSync(
      join(dir, 'no_account.txt'),
      'Subject: Custom notice for {{email}}\n\nOur own words about {{action}}.\n',
    );
    let server: AccountsApp | undefined;
    try {
      server = await listenOn(t, mailSettings(t, smtp, { templates_dir: dir }));
      await server.post('/users/password-reset', { email: 'custom@myapi.test' });
      const mail = await smtp.waitFor('custom@myapi.test', /Custom notice for custom@myapi\.test/);
      assert.equal(mail.text.trim(), 'Our own words about password reset.');
      assert.match(mail.html, /no account uses this address/, 'the shipped HTML stays');
    } finally {
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without SMTP, the start says so and each mail is an info line of the log', async () => {
    const server = await listenOn(t, { mail: { ...t.settings.mail, poll_ms: 50 } });
    try {
      const notice = server.logs.lines.find((l) =>
        String(l.msg).startsWith('mail in development mode'),
      );
      assert.equal(notice?.level, 30);
      await server.post('/users/password-reset', { email: OWNER.email });
      const line = await until('the mail in the log', () =>
        Promise.resolve(
          server.logs.lines.find((l) => String(l.msg).startsWith('mail (development mode')),
        ),
      );
      assert.equal(line.level, 30);
      const mail = line.mail as { to: string; subject: string; text: string };
      assert.equal(mail.to, OWNER.email);
      assert.match(mail.text, /with this code:\n\n[A-Za-z0-9_-]{43}\n/);
    } finally {
      await server.close();
    }
  });
});
