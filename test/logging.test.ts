import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { batchedWriter, createLogger } from '../src/backend/logging.js';
import { LogCapture } from './support/databases.js';

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
