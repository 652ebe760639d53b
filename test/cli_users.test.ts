import { join } from 'node:path';
import assert from 'node:assert/strict';
import { scaled } from './support/timeouts.js';
import { after, before, describe, it } from 'node:test';
import argon2 from 'argon2';
import { loadSettings } from '../src/backend/config.js';
import { openDatabase } from '../src/backend/database.js';
import { users } from '../src/models/users.js';
import type { UserWithHash } from '../src/schemas/users.js';
import { UserCRUD } from '../src/services/users.js';
import { createServerDatabase, databaseKinds, TOKEN_KEY } from './support/databases.js';
import { ADMIN } from './support/http.js';
import {
  CREATE_USER_ARGS,
  lines,
  runCommand,
  tempDir,
  USER,
  type RunResult,
} from './support/process.js';

/**
 * The `myapi` user commands as an operator runs them (`node dist/cli.js ...`, built by
 * `npm run build`), on the embedded database in a directory of its own and on a fresh
 * PostgreSQL database. Every call starts node and opens the database, so each database gets a
 * few tests that check many things in order.
 */

const STACK_FRAME = '    at ';
/** Generous: under load an embedded call (node start, WASM, open, migrate check) takes 20 s. */
const RUN_TIMEOUT_MS = scaled(60_000);
const TEST_TIMEOUT_MS = scaled(300_000);
const HEADER = 'user_id\temail\tname\tactive\tsuperuser';
const NOBODY = 'nobody@myapi.com';

function run(
  args: string[],
  cwd: string,
  env: Record<string, string>,
  input = '',
): Promise<RunResult> {
  return runCommand(args, { cwd, env, input, timeoutMs: RUN_TIMEOUT_MS });
}

function show(args: string[], result: RunResult): string {
  return `myapi ${args.join(' ')}: exit ${String(result.code)} (${String(result.signal)})\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
}

type Target = 'embedded' | 'postgres';

const targets: Target[] = databaseKinds().includes('postgres')
  ? ['embedded', 'postgres']
  : ['embedded'];

describe('myapi user commands', { concurrency: true }, () => {
  for (const target of targets) {
    const label =
      target === 'embedded' ? 'the embedded database in a temp dir' : 'a fresh PostgreSQL database';

    describe(`on ${label}`, { concurrency: 1, timeout: TEST_TIMEOUT_MS * 4 }, () => {
      let cwd: string;
      let env: Record<string, string>;
      let dsn: string;
      let drop: () => Promise<void> = async () => undefined;

      /** One `myapi` call; `input` is piped on stdin. */
      const cli = (args: string[], input?: string) => run(args, cwd, env, input);

      /** Exit 0 with exactly `stdout`, and nothing on stderr unless `warning` says what. */
      const succeeds = async (args: string[], stdout: string | RegExp, warning?: RegExp) => {
        const result = await cli(args);
        assert.equal(result.code, 0, show(args, result));
        if (typeof stdout === 'string') assert.equal(result.stdout, stdout, show(args, result));
        else assert.match(result.stdout, stdout, show(args, result));
        if (warning === undefined) {
          assert.equal(result.stderr, '', show(args, result));
        } else {
          const stderr = lines(result.stderr);
          assert.equal(stderr.length, 1, `one warning line expected:\n${show(args, result)}`);
          assert.match(stderr[0] ?? '', /^myapi: warning: /);
          assert.match(stderr[0] ?? '', warning);
        }
        return result;
      };

      /** Exit 1 with exactly one stderr line, no stack trace, nothing on stdout; the line. */
      const fails = async (args: string[]) => {
        const result = await cli(args);
        assert.equal(result.code, 1, show(args, result));
        assert.ok(!result.stderr.includes(STACK_FRAME), `stack trace:\n${show(args, result)}`);
        const stderr = lines(result.stderr);
        assert.equal(stderr.length, 1, `one line expected on stderr:\n${show(args, result)}`);
        assert.equal(result.stdout, '', show(args, result));
        return stderr[0] ?? '';
      };

      /** `users list`, checked for its header; the user lines, split on tabs. */
      const list = async () => {
        const args = ['users', 'list'];
        const result = await cli(args);
        assert.equal(result.code, 0, show(args, result));
        assert.equal(result.stderr, '', show(args, result));
        assert.ok(result.stdout.endsWith('\n'), show(args, result));
        const [header, ...rows] = result.stdout.slice(0, -1).split('\n');
        assert.equal(header, HEADER, show(args, result));
        return rows.map((row) => row.split('\t'));
      };

      /** The stored row, read from the database directly (the CLI has exited and let go). */
      const stored = async (email: string): Promise<UserWithHash | undefined> => {
        const { settings } = loadSettings({
          env: { MYAPI_DATABASE__DSN: dsn, MYAPI_TOKEN_KEY: TOKEN_KEY },
          cwd,
        });
        const database = await openDatabase(settings, { role: 'tool' });
        try {
          return await new UserCRUD(database, users).getByEmail(email);
        } finally {
          await database.close();
        }
      };

      before(async () => {
        cwd = tempDir();
        if (target === 'embedded') {
          env = {};
          dsn = `pglite:${join(cwd, '.myapi', 'pgdata')}`;
        } else {
          const server = await createServerDatabase();
          drop = server.drop;
          dsn = server.dsn;
          env = { MYAPI_DATABASE__DSN: server.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
          const migrated = await cli(['migrate']);
          assert.equal(migrated.code, 0, show(['migrate'], migrated));
        }
      });

      after(async () => {
        await drop();
      });

      it(
        "create-user: the tutorial's command warns about the common password; --admin makes a superuser; users list shows both",
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          await succeeds(
            CREATE_USER_ARGS,
            'created user 1 test user <test_user@myapi.com>\n',
            /password is too common/,
          );
          await succeeds(
            [
              'create-user',
              '--admin',
              '--name',
              ADMIN.name,
              '--email',
              ADMIN.email,
              '--password',
              ADMIN.password,
            ],
            `created user 2 ${ADMIN.name} <${ADMIN.email}> (superuser)\n`,
          );
          assert.deepEqual(await list(), [
            ['1', USER.email, USER.name, 'yes', 'no'],
            ['2', ADMIN.email, ADMIN.name, 'yes', 'yes'],
          ]);
          const admin = await stored(ADMIN.email);
          assert.equal(admin?.is_superuser, true);
          assert.equal(admin.is_active, true);
          assert.ok(await argon2.verify(admin.hashed_password, ADMIN.password));
        },
      );

      it(
        'users set-password changes the stored hash, warns about a weak one but proceeds, reads a piped one',
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const original = (await stored(USER.email))?.hashed_password;
          assert.ok(original !== undefined);

          const fresh = 'a brand new passphrase';
          await succeeds(
            ['users', 'set-password', USER.email, '--password', fresh],
            `password changed for ${USER.email}; 0 logins ended\n`,
          );
          const changed = (await stored(USER.email))?.hashed_password ?? '';
          assert.notEqual(changed, original);
          assert.match(changed, /^\$argon2id\$/);
          assert.ok(await argon2.verify(changed, fresh), 'the new password does not verify');
          assert.ok(!(await argon2.verify(changed, USER.password)), 'the old password verifies');

          // Weak: warned about on stderr, and set all the same (the email in any case).
          await succeeds(
            ['users', 'set-password', USER.email.toUpperCase(), '--password', 'password1'],
            `password changed for ${USER.email}; 0 logins ended\n`,
            /password is too common/,
          );
          const weakHash = (await stored(USER.email))?.hashed_password ?? '';
          assert.ok(await argon2.verify(weakHash, 'password1'), 'the weak password was not set');

          const piped = 'piped secret phrase 42';
          const args = ['users', 'set-password', USER.email];
          const result = await cli(args, `${piped}\n`);
          assert.equal(result.code, 0, show(args, result));
          assert.equal(result.stdout, `password changed for ${USER.email}; 0 logins ended\n`);
          assert.equal(result.stderr, '', show(args, result));
          assert.ok(!`${result.stdout}${result.stderr}`.includes(piped));
          const pipedHash = (await stored(USER.email))?.hashed_password ?? '';
          assert.ok(await argon2.verify(pipedHash, piped), 'the piped password does not verify');
          assert.ok(!(await argon2.verify(pipedHash, 'password1')), 'the weak one is still set');
          assert.ok(!(await argon2.verify(pipedHash, `${piped}\n`)), 'the newline was kept');

          assert.equal(
            await fails(['users', 'set-password', NOBODY, '--password', fresh]),
            `myapi: error: no user with email ${NOBODY}`,
          );
        },
      );

      it(
        'activate, deactivate, promote, demote and delete by email; unknown emails and the last active superuser fail in one line',
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          await succeeds(['users', 'deactivate', USER.email], `${USER.email} deactivated\n`);
          await succeeds(['users', 'promote', USER.email], `${USER.email} promoted to superuser\n`);
          assert.deepEqual(await list(), [
            ['1', USER.email, USER.name, 'no', 'yes'],
            ['2', ADMIN.email, ADMIN.name, 'yes', 'yes'],
          ]);

          // The disabled superuser does not count: the admin is the last active one.
          for (const command of ['demote', 'deactivate', 'delete']) {
            const line = await fails(['users', command, ADMIN.email]);
            assert.match(line, /^myapi: error: .*last active superuser/, command);
          }

          await succeeds(['users', 'activate', USER.email], `${USER.email} activated\n`);
          await succeeds(['users', 'demote', ADMIN.email], `${ADMIN.email} demoted\n`);
          await succeeds(['users', 'delete', ADMIN.email], `deleted user 2 <${ADMIN.email}>\n`);
          assert.deepEqual(await list(), [['1', USER.email, USER.name, 'yes', 'yes']]);

          // Now the tutorial's user is the last active superuser.
          assert.match(
            await fails(['users', 'demote', USER.email]),
            /^myapi: error: .*last active superuser/,
          );

          for (const command of ['activate', 'deactivate', 'promote', 'demote', 'delete']) {
            assert.equal(
              await fails(['users', command, NOBODY]),
              `myapi: error: no user with email ${NOBODY}`,
              command,
            );
          }
          const remaining = await stored(USER.email);
          assert.equal(remaining?.is_active, true);
          assert.equal(remaining.is_superuser, true);
        },
      );
    });
  }
});
