import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { scaled } from './support/timeouts.js';
import { after, before, describe, it } from 'node:test';
import argon2 from 'argon2';
import pg from 'pg';
import { ADMIN_DSN, TOKEN_KEY, createServerDatabase, moviesAnalyzed } from './support/databases.js';
import { spawn } from 'node:child_process';
import {
  CLI,
  cleanEnv,
  CREATE_USER_ARGS,
  lines,
  runCommand,
  USER,
  type RunOptions,
  type RunResult,
} from './support/process.js';

/**
 * The `myapi` command as a user runs it: `node dist/cli.js ...` in a directory of its own, with
 * no MYAPI_* variable from the test runner's environment leaking in.
 */

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;
const STACK_FRAME = '    at ';
// eslint-disable-next-line no-control-regex
const TERMINAL_ESCAPE = /\u001b\[[0-9;]*[A-Za-z]/g;
/** A safety net, not a timing: an embedded first start (WASM, initdb, migrations) is slow under load. */
const RUN_TIMEOUT_MS = scaled(60_000);

function run(args: string[], options: RunOptions): Promise<RunResult> {
  return runCommand(args, { ...options, timeoutMs: RUN_TIMEOUT_MS });
}

function show(result: RunResult): string {
  return `exit ${String(result.code)} (${String(result.signal)})\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
}

/** Exit 1 with exactly one non-empty line on stderr, no stack trace; returns that line. */
function assertOneLineFailure(result: RunResult): string {
  assert.equal(result.code, 1, show(result));
  assert.ok(!result.stderr.includes(STACK_FRAME), `stack trace on stderr:\n${show(result)}`);
  const errorLines = lines(result.stderr);
  assert.equal(errorLines.length, 1, `expected one line on stderr:\n${show(result)}`);
  return errorLines[0] ?? '';
}

/** Exit 1 naming `variable` on exactly one stderr line (one line per problem); returns that line. */
function assertConfigProblem(result: RunResult, variable: string): string {
  assert.equal(result.code, 1, show(result));
  assert.ok(!result.stderr.includes(STACK_FRAME), `stack trace on stderr:\n${show(result)}`);
  const naming = lines(result.stderr).filter((line) => line.includes(variable));
  assert.equal(naming.length, 1, `expected one line naming ${variable}:\n${show(result)}`);
  return naming[0] ?? '';
}

async function query<T>(dsn: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: dsn, connectionTimeoutMillis: scaled(5000) });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

async function movieCount(dsn: string): Promise<number> {
  const [row] = await query<{ n: number }>(dsn, 'select count(*)::int as n from myapi.movies');
  return row?.n ?? -1;
}

async function storedHash(dsn: string, email: string): Promise<string | undefined> {
  const rows = await query<{ hashed_password: string }>(
    dsn,
    'select hashed_password from myapi.users where email = $1',
    [email],
  );
  return rows[0]?.hashed_password;
}

const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'myapi-cli-'));
  tempDirs.push(dir);
  return dir;
}

after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('myapi CLI', { concurrency: true }, () => {
  it('--version prints the package.json version', async () => {
    const result = await run(['--version'], { cwd: tempDir() });
    assert.equal(result.code, 0, show(result));
    assert.equal(result.stdout.trim(), PACKAGE_VERSION);
  });

  it('--help lists serve, migrate, seed and create-user', async () => {
    const result = await run(['--help'], { cwd: tempDir() });
    assert.equal(result.code, 0, show(result));
    for (const command of ['serve', 'migrate', 'seed', 'create-user']) {
      assert.match(result.stdout, new RegExp(`^\\s+${command}\\b`, 'm'), `missing ${command}`);
    }
  });

  describe('against a fresh PostgreSQL server database', { concurrency: 1 }, () => {
    let server: { dsn: string; drop: () => Promise<void> };
    let cwd: string;
    let env: Record<string, string>;
    const cli = (args: string[], input?: string) =>
      run(args, { cwd, env, ...(input === undefined ? {} : { input }) });

    before(async () => {
      server = await createServerDatabase();
      cwd = tempDir();
      env = { MYAPI_DATABASE__DSN: server.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
    });

    after(async () => {
      await server.drop();
    });

    it('create-user before migrate fails with one line telling to run `myapi migrate`', async () => {
      const result = await cli(CREATE_USER_ARGS);
      const line = assertOneLineFailure(result);
      assert.match(line, /myapi migrate/);
      const [table] = await query<{ name: string | null }>(
        server.dsn,
        "select to_regclass('myapi.users')::text as name",
      );
      assert.equal(table?.name, null, 'create-user must not create tables on a server database');
    });

    it('migrate applies 0000_init, and a second migrate says up to date', async () => {
      const first = await cli(['migrate']);
      assert.equal(first.code, 0, show(first));
      assert.match(first.stdout, /applied 0000_init/);
      const second = await cli(['migrate']);
      assert.equal(second.code, 0, show(second));
      assert.match(second.stdout, /up to date/);
      assert.doesNotMatch(second.stdout, /applied 0000_init/);
    });

    it('seed loads the demo movies, and a second seed adds 0', async () => {
      const first = await cli(['seed']);
      assert.equal(first.code, 0, show(first));
      const loaded = await movieCount(server.dsn);
      assert.ok(loaded > 0, 'no demo movies loaded');
      assert.match(first.stdout, new RegExp(`added ${loaded} movies`));
      const second = await cli(['seed']);
      assert.equal(second.code, 0, show(second));
      assert.match(second.stdout, /added 0 movies/);
      assert.equal(await movieCount(server.dsn), loaded);
    });

    it('seed --synthetic 20000 adds 20000 movies, shows progress on stderr, then analyzes', async () => {
      const before = await movieCount(server.dsn);
      assert.equal(await moviesAnalyzed(server.dsn), false, 'analyzed before the bulk load');
      const result = await cli(['seed', '--synthetic', '20000']);
      assert.equal(result.code, 0, show(result));
      assert.match(result.stdout, /added 20000 movies/);
      assert.ok(
        lines(result.stderr).some((line) => /\b20000\/20000\b/.test(line)),
        `no progress line on stderr:\n${show(result)}`,
      );
      assert.equal(await movieCount(server.dsn), before + 20_000);
      // Plans are chosen per call from the statistics: they must be there at once.
      assert.equal(await moviesAnalyzed(server.dsn), true);
    });

    it('create-user with --password creates the user and stores an argon2id hash', async () => {
      const result = await cli(CREATE_USER_ARGS);
      assert.equal(result.code, 0, show(result));
      assert.match(result.stdout, /test_user@myapi\.com/);
      const hash = await storedHash(server.dsn, USER.email);
      if (hash === undefined) assert.fail('the user was not stored');
      assert.ok(hash.startsWith('$argon2id$'), `stored hash: ${hash}`);
      assert.ok(!hash.includes(USER.password));
      assert.ok(await argon2.verify(hash, USER.password));
    });

    it('create-user for an existing email fails with one line saying it already exists', async () => {
      const result = await cli(CREATE_USER_ARGS);
      const line = assertOneLineFailure(result);
      assert.match(line, /already exists/);
      const [row] = await query<{ n: number }>(
        server.dsn,
        'select count(*)::int as n from myapi.users where lower(email) = $1',
        [USER.email],
      );
      assert.equal(row?.n, 1);
    });

    it('create-user with an invalid email fails with one clear line', async () => {
      const result = await cli([
        'create-user',
        '--name',
        'someone',
        '--email',
        'not-an-email',
        '--password',
        USER.password,
      ]);
      const line = assertOneLineFailure(result);
      assert.match(line, /email/i);
      assert.match(line, /not-an-email/);
      const [row] = await query<{ n: number }>(
        server.dsn,
        "select count(*)::int as n from myapi.users where email like '%not-an-email%'",
      );
      assert.equal(row?.n, 0);
    });

    it('create-user reads the password piped on stdin and stores only its argon2id hash', async () => {
      const email = 'piped@myapi.com';
      const result = await cli(
        ['create-user', '--name', 'piped user', '--email', email],
        's3cret-pass\n',
      );
      assert.equal(result.code, 0, show(result));
      assert.ok(!`${result.stdout}${result.stderr}`.includes('s3cret-pass'));
      const hash = await storedHash(server.dsn, email);
      if (hash === undefined) assert.fail('the user was not stored');
      assert.ok(hash.startsWith('$argon2id$'), `stored hash: ${hash}`);
      assert.notEqual(hash, 's3cret-pass');
      assert.ok(!hash.includes('s3cret-pass'));
      assert.ok(await argon2.verify(hash, 's3cret-pass'), 'the hash is not of "s3cret-pass"');
    });
    it('create-user on a terminal asks twice without echo, and refuses a mismatch', async () => {
      // script(1) gives the CLI a real terminal; the answers are typed when each prompt shows.
      const typeAnswers = (email: string, answers: string[]) =>
        new Promise<{ code: number | null; output: string }>((resolve) => {
          const command = [process.execPath, CLI, 'create-user', '--name', 'tty', '--email', email]
            .map((part) => `'${part}'`)
            .join(' ');
          const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
            cwd,
            env: cleanEnv(env),
          });
          let output = '';
          let typed = 0;
          child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
            output += chunk;
            // One answer per prompt shown, typed once: readline draws a prompt in several
            // writes (cursor moves around it), and each would otherwise look like a new prompt.
            const prompts = output.replace(TERMINAL_ESCAPE, '').match(/password: /gi)?.length ?? 0;
            if (prompts > typed && typed < answers.length) {
              child.stdin.write(`${answers[typed] ?? ''}\r`);
              typed++;
            }
          });
          const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
          child.on('close', (code) => {
            clearTimeout(timer);
            resolve({ code, output });
          });
        });

      const typed = await typeAnswers('tty@myapi.com', ['typed-secret-1', 'typed-secret-1']);
      assert.equal(typed.code, 0, typed.output);
      assert.match(typed.output, /Password: [\s\S]*Repeat password: [\s\S]*created user/);
      assert.ok(!typed.output.includes('typed-secret-1'), `echoed: ${typed.output}`);
      const hash = await storedHash(server.dsn, 'tty@myapi.com');
      assert.ok(hash !== undefined && (await argon2.verify(hash, 'typed-secret-1')));

      const mismatch = await typeAnswers('tty2@myapi.com', ['one-secret', 'another-secret']);
      assert.equal(mismatch.code, 1, mismatch.output);
      assert.match(mismatch.output, /the passwords do not match/);
      assert.equal(await storedHash(server.dsn, 'tty2@myapi.com'), undefined);
    });
  });

  it('an unreachable database: one line "cannot reach the database", no stack, no password', async () => {
    const result = await run(CREATE_USER_ARGS, {
      cwd: tempDir(),
      env: {
        MYAPI_DATABASE__DSN: 'postgresql://postgres:supersecret@127.0.0.1:1/x',
        MYAPI_TOKEN_KEY: TOKEN_KEY,
      },
    });
    assert.ok(!`${result.stdout}${result.stderr}`.includes('supersecret'), show(result));
    const line = assertOneLineFailure(result);
    assert.match(line, /cannot reach the database/);
    assert.match(line, /127\.0\.0\.1:1\b/);
  });

  describe('bad configuration stops with one line per problem naming the variable', () => {
    it('MYAPI_PORT=abc: serve exits 1 naming MYAPI_PORT', async () => {
      const result = await run(['serve'], { cwd: tempDir(), env: { MYAPI_PORT: 'abc' } });
      const line = assertConfigProblem(result, 'MYAPI_PORT');
      assert.match(line, /integer|number|port/i);
    });

    it('a server DSN without MYAPI_TOKEN_KEY: serve exits 1 naming MYAPI_TOKEN_KEY', async () => {
      const result = await run(['serve'], {
        cwd: tempDir(),
        env: { MYAPI_DATABASE__DSN: ADMIN_DSN },
      });
      assertConfigProblem(result, 'MYAPI_TOKEN_KEY');
    });

    it('MYAPI_TOKEN_KEY=short: serve exits 1 saying it needs 32 bytes, without echoing it', async () => {
      const result = await run(['serve'], {
        cwd: tempDir(),
        env: { MYAPI_DATABASE__DSN: ADMIN_DSN, MYAPI_TOKEN_KEY: 'short' },
      });
      const line = assertConfigProblem(result, 'MYAPI_TOKEN_KEY');
      assert.match(line, /32 bytes/);
      assert.ok(!`${result.stdout}${result.stderr}`.includes('short'), show(result));
    });
  });

  it('embedded mode: create-user with no server makes ./.myapi/pgdata, migrates, and seed is idempotent', async () => {
    const cwd = tempDir();
    const created = await run(CREATE_USER_ARGS, { cwd });
    assert.equal(created.code, 0, show(created));
    assert.match(created.stdout, /test_user@myapi\.com/);
    const dataDir = join(cwd, '.myapi', 'pgdata');
    assert.ok(existsSync(dataDir), 'no ./.myapi/pgdata');
    assert.ok(!existsSync(join(dataDir, 'myapi.lock')), 'the lock outlived the command');

    const again = await run(CREATE_USER_ARGS, { cwd });
    assert.match(assertOneLineFailure(again), /already exists/);

    const total = (result: RunResult) => /; (\d+) movies in /.exec(result.stdout)?.[1];
    const first = await run(['seed'], { cwd });
    assert.equal(first.code, 0, show(first));
    const second = await run(['seed'], { cwd });
    assert.equal(second.code, 0, show(second));
    assert.match(second.stdout, /added 0 movies/);
    assert.ok(Number(total(first)) > 0, show(first));
    assert.equal(total(second), total(first));
  });
});
