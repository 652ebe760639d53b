import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadSettings } from '../src/backend/config.js';

const KEY = 'k'.repeat(32);
const dir = mkdtempSync(join(tmpdir(), 'myapi-config-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function problems(env: NodeJS.ProcessEnv, cwd = '/nonexistent'): readonly string[] {
  try {
    loadSettings({ env, cwd });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('configuration', () => {
  it('has the documented defaults: embedded database, port 8000, 60-minute tokens', () => {
    const { settings } = loadSettings({ env: {}, cwd: '/nonexistent' });
    assert.equal(settings.database.dsn, 'pglite:./.myapi/pgdata');
    assert.equal(settings.host, '127.0.0.1');
    assert.equal(settings.port, 8000);
    assert.equal(settings.token_expire_minutes, 60);
    assert.equal(settings.log_level, 'info');
    assert.equal(settings.token_key, undefined);
    assert.equal(settings.passwords.upgrade_legacy, true);
  });

  it('bounds how long the database may keep a request waiting, by default and when set', () => {
    const { settings } = loadSettings({ env: {}, cwd: '/nonexistent' });
    assert.deepEqual(
      [
        settings.database.acquire_timeout_ms,
        settings.database.statement_timeout_ms,
        settings.database.lock_timeout_ms,
        settings.database.idle_in_transaction_timeout_ms,
      ],
      [1000, 30_000, 2000, 30_000],
    );
    const set = loadSettings({
      env: {
        MYAPI_DATABASE__ACQUIRE_TIMEOUT_MS: '250',
        MYAPI_DATABASE__STATEMENT_TIMEOUT_MS: '0',
        MYAPI_DATABASE__LOCK_TIMEOUT_MS: '500',
        MYAPI_DATABASE__IDLE_IN_TRANSACTION_TIMEOUT_MS: '60000',
      },
      cwd: '/nonexistent',
    }).settings.database;
    assert.deepEqual(
      [
        set.acquire_timeout_ms,
        set.statement_timeout_ms,
        set.lock_timeout_ms,
        set.idle_in_transaction_timeout_ms,
      ],
      [250, 0, 500, 60_000],
    );
    assert.deepEqual(
      problems({
        MYAPI_DATABASE__ACQUIRE_TIMEOUT_MS: '0',
        MYAPI_DATABASE__LOCK_TIMEOUT_MS: '-1',
      }),
      [
        'MYAPI_DATABASE__ACQUIRE_TIMEOUT_MS: must be an integer of milliseconds from 1 to 60000 (got 0)',
        'MYAPI_DATABASE__LOCK_TIMEOUT_MS: must be an integer of milliseconds from 0 (no limit) to 86400000 (got -1)',
      ],
    );
  });

  it('reads MYAPI_ variables, nests on __ and ignores case', () => {
    const { settings } = loadSettings({
      env: {
        myapi_database__dsn: 'postgresql://u@h/db',
        MYAPI_Token_Key: KEY,
        MYAPI_PORT: '9000',
        MYAPI_TOKEN_EXPIRE_MINUTES: '5',
        MYAPI_LOG_LEVEL: 'debug',
        MYAPI_PASSWORDS__UPGRADE_LEGACY: 'false',
        OTHER_PORT: '1',
      },
      cwd: '/nonexistent',
    });
    assert.equal(settings.database.dsn, 'postgresql://u@h/db');
    assert.equal(settings.token_key, KEY);
    assert.equal(settings.port, 9000);
    assert.equal(settings.token_expire_minutes, 5);
    assert.equal(settings.log_level, 'debug');
    assert.equal(settings.passwords.upgrade_legacy, false);
  });

  it('reads .env from the working directory, and the environment wins', () => {
    writeFileSync(
      join(dir, '.env'),
      '# local settings\nMYAPI_PORT=7000\nMYAPI_HOST="0.0.0.0"\nMYAPI_LOG_LEVEL=warn\n',
    );
    const { settings } = loadSettings({ env: { MYAPI_LOG_LEVEL: 'error' }, cwd: dir });
    assert.equal(settings.port, 7000);
    assert.equal(settings.host, '0.0.0.0');
    assert.equal(settings.log_level, 'error');
  });

  it('lets command-line overrides win over everything', () => {
    const { settings } = loadSettings({
      env: { MYAPI_PORT: '9000' },
      cwd: '/nonexistent',
      overrides: { port: 1234, host: undefined },
    });
    assert.equal(settings.port, 1234);
    assert.equal(settings.host, '127.0.0.1');
  });

  it('reports every bad value on its own line, naming the variable as it was written', () => {
    const lines = problems({
      MYAPI_PORT: 'abc',
      myapi_log_level: 'loud',
      MYAPI_TOKEN_EXPIRE_MINUTES: '0',
      MYAPI_DATABASE__DSN: 'mysql://x',
      MYAPI_PASSWORDS__UPGRADE_LEGACY: 'maybe',
    });
    assert.equal(lines.length, 5);
    assert.ok(
      lines.includes('MYAPI_PASSWORDS__UPGRADE_LEGACY: must be true or false (got "maybe")'),
    );
    assert.match(lines.find((l) => l.startsWith('MYAPI_PORT:')) ?? '', /0 to 65535.*"abc"/);
    assert.match(lines.find((l) => l.startsWith('myapi_log_level:')) ?? '', /one of fatal,/);
    assert.ok(lines.some((l) => l.startsWith('MYAPI_TOKEN_EXPIRE_MINUTES:')));
    assert.match(lines.find((l) => l.startsWith('MYAPI_DATABASE__DSN:')) ?? '', /postgresql:\/\//);
  });

  it('requires a token key or a keys secret of at least 32 bytes with a PostgreSQL server', () => {
    assert.deepEqual(problems({ MYAPI_DATABASE__DSN: 'postgresql://u@h/db' }), [
      'MYAPI_TOKEN_KEYS_SECRET: required with a PostgreSQL server DSN unless MYAPI_TOKEN_KEY is set ' +
        '(a random secret of at least 32 bytes that encrypts the signing keys)',
    ]);
    const secret = 'a keys secret that is long enough 0123456789';
    const { settings } = loadSettings({
      env: { MYAPI_DATABASE__DSN: 'postgresql://u@h/db', MYAPI_TOKEN_KEYS_SECRET: secret },
      cwd: '/nonexistent',
    });
    assert.equal(settings.token_keys_secret, secret);
    const weak = problems({
      MYAPI_DATABASE__DSN: 'postgres://u@h/db',
      MYAPI_TOKEN_KEYS_SECRET: 'short',
    });
    assert.equal(weak.length, 1);
    assert.match(weak[0] ?? '', /^MYAPI_TOKEN_KEYS_SECRET: must be a secret of at least 32 bytes$/);
    assert.deepEqual(
      problems({ MYAPI_DATABASE__DSN: 'pglite:memory', MYAPI_TOKEN_ALGORITHM: 'HS256' }),
      ['MYAPI_TOKEN_ALGORITHM: HS256 needs MYAPI_TOKEN_KEY'],
    );
    const short = problems({ MYAPI_DATABASE__DSN: 'postgres://u@h/db', MYAPI_TOKEN_KEY: 'short' });
    assert.deepEqual(short, ['MYAPI_TOKEN_KEY: must be at least 32 bytes long (got 5)']);
    assert.ok(!short.join('').includes('short"'), 'the secret itself is never echoed');
  });

  it('lets the embedded database run without a key, but still checks a given one', () => {
    assert.equal(loadSettings({ env: {}, cwd: '/nonexistent' }).settings.token_key, undefined);
    assert.deepEqual(problems({ MYAPI_TOKEN_KEY: 'x'.repeat(31) }), [
      'MYAPI_TOKEN_KEY: must be at least 32 bytes long (got 31)',
    ]);
  });

  it('reports unknown MYAPI_ variables (likely typos) without failing', () => {
    const { unknown } = loadSettings({ env: { MYAPI_PROT: '1' }, cwd: '/nonexistent' });
    assert.deepEqual(unknown, ['MYAPI_PROT']);
  });
});
