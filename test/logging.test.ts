import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { batchedWriter, createLogger } from '../src/backend/logging.js';
import { redactUrl } from '../src/backend/log_redaction.js';
import { createTestDatabase, LogCapture } from './support/databases.js';

/** A real failed statement (a unique violation) on PGlite, with values in its parameters. */
async function failedStatement(): Promise<Error> {
  const t = await createTestDatabase('pglite', { migrated: false });
  try {
    await t.database.db.execute(sql`create table probe (email text primary key, hash text)`);
    const insert = sql`insert into probe values (${'dup@example.com'}, ${'$argon2id$v=19$secret'})`;
    await t.database.db.execute(insert);
    await t.database.db.execute(insert);
  } catch (error) {
    return error as Error;
  } finally {
    await t.close();
  }
  throw new Error('the statement did not fail');
}

const dir = mkdtempSync(join(tmpdir(), 'myapi-logging-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('logging', () => {
  it('redacts credentials wherever the application puts them', () => {
    const capture = new LogCapture();
    const logger = createLogger('info', capture);
    logger.info(
      {
        password: 'pw-top',
        access_token: 'tok-top',
        client_secret: 'cs-top',
        token_key: 'key-top',
        body: { password: 'pw-body', client_secret: 'cs-body' },
        req: { headers: { authorization: 'Bearer tok-header', cookie: 'sid=cookie-value' } },
      },
      'with secrets',
    );
    const [line] = capture.raw;
    assert.ok(line);
    for (const secret of ['pw-', 'tok-', 'cs-', 'key-top', 'cookie-value']) {
      assert.ok(!line.includes(secret), `${secret} leaked: ${line}`);
    }
    assert.equal((line.match(/\[redacted\]/g) ?? []).length, 8);
  });

  it('redacts the values of credential query parameters in any URL it logs', () => {
    const cases: [string, string][] = [
      ['/movies/1', '/movies/1'],
      ['/movies?limit=10&after=5', '/movies?limit=10&after=5'],
      ['/movies/1?access_token=eyJ.x.y', '/movies/1?access_token=[redacted]'],
      ['/token?Password=pw&username=u', '/token?Password=[redacted]&username=u'],
      [
        '/x?a=1&CODE=c&refresh_token=r&token=t',
        '/x?a=1&CODE=[redacted]&refresh_token=[redacted]&token=[redacted]',
      ],
      ['/x?client%5Fsecret=s&tokens=keep', '/x?client%5Fsecret=[redacted]&tokens=keep'],
      ['/x?password', '/x?password=[redacted]'],
    ];
    for (const [url, logged] of cases) assert.equal(redactUrl(url), logged, url);
    const capture = new LogCapture();
    const logger = createLogger('info', capture);
    logger.info({ url: '/movies?access_token=tok-url' }, 'line');
    logger.debug({ url: '/movies?access_token=tok-debug' }, 'not written');
    logger.error({ url: '/token?password=pw-url', err: new Error('boom') }, 'failed');
    assert.equal(capture.raw.length, 2);
    assert.doesNotMatch(capture.raw.join('\n'), /tok-url|pw-url/);
  });

  it('logs a failed statement with its SQLSTATE and constraint, never its parameters or detail', async () => {
    const error = await failedStatement();
    // What pino would otherwise write: the values are in the error, in three places.
    assert.match(
      `${error.message} ${String((error.cause as { detail?: string }).detail)}`,
      /dup@example\.com/,
    );
    const capture = new LogCapture();
    const logger = createLogger('info', capture);
    logger.error({ err: error }, 'request failed');
    logger.error(error);
    logger.error({ err: error }, error.message);
    logger.warn({ cause: error.message }, 'request refused');
    logger.error({ err: new Error('wrapped', { cause: error }) }, 'outer');
    assert.equal(capture.raw.length, 5);
    for (const line of capture.raw) {
      assert.doesNotMatch(line, /dup@example|argon2id|params:|Key \(/, line);
    }
    const [first, second, third] = capture.lines as [
      { msg: string; err: Record<string, unknown> },
      { msg: string },
      { msg: string },
    ];
    assert.equal(first.msg, 'request failed');
    assert.match(
      String(first.err.message),
      /^Failed query: insert into probe values \(\$1, \$2\)$/,
    );
    assert.deepEqual(
      [first.err.cause].map((c) => {
        const { code, constraint, table } = c as Record<string, unknown>;
        return { code, constraint, table };
      }),
      [{ code: '23505', constraint: 'probe_pkey', table: 'probe' }],
    );
    assert.match(
      String(first.err.stack),
      /caused by: error: duplicate key value violates unique constraint "probe_pkey"/,
    );
    assert.match(String(first.err.stack), /\n {4}at /);
    // Without a message of its own (or with the raw one), the line's msg is the safe message.
    assert.equal(second.msg, 'Failed query: insert into probe values ($1, $2)');
    assert.equal(third.msg, 'Failed query: insert into probe values ($1, $2)');
  });

  it('gathers lines for a few milliseconds into one write, in order, and 32 KiB at once', async () => {
    const path = join(dir, 'out.log');
    const fd = openSync(path, 'w');
    try {
      const logger = createLogger('info', batchedWriter(fd));
      for (let i = 0; i < 50; i++) logger.info({ i }, 'line');
      assert.equal(readFileSync(path, 'utf8'), '', 'nothing written within the turn');
      await delay(50);
      const lines = () => readFileSync(path, 'utf8').trim().split('\n');
      assert.equal(lines().length, 50, 'all of them in one write, well within 50 ms');
      // 32 KiB of lines do not wait for the timer.
      for (let i = 50; i < 600; i++) logger.info({ i, padding: 'x'.repeat(100) }, 'line');
      assert.ok(lines().length >= 250, `${lines().length} lines written at once`);
      await delay(50);
      assert.deepEqual(
        lines().map((l) => (JSON.parse(l) as { i: number }).i),
        Array.from({ length: 600 }, (_, i) => i),
      );
    } finally {
      closeSync(fd);
    }
  });

  it('writes lines of any size and any characters whole, in order', async () => {
    const path = join(dir, 'wide.log');
    const fd = openSync(path, 'w');
    try {
      const logger = createLogger('info', batchedWriter(fd));
      // Four bytes a character, and lines past the 32 KiB batch on their own.
      const texts = ['é'.repeat(10), '😀'.repeat(40_000), 'plain', '€'.repeat(30_000), 'last'];
      for (let round = 0; round < 3; round++) {
        for (const text of texts) logger.info({ round }, text);
      }
      await delay(50);
      const lines = readFileSync(path, 'utf8').trim().split('\n');
      assert.deepEqual(
        lines.map((line) => JSON.parse(line) as { round: number; msg: string }).map((l) => l.msg),
        [...texts, ...texts, ...texts],
      );
    } finally {
      closeSync(fd);
    }
  });
});
