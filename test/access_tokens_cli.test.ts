import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServerDatabase, databaseKinds, TOKEN_KEY } from './support/databases.js';
import {
  CREATE_USER_ARGS,
  delay,
  lines,
  runCommand,
  startServer,
  tempDir,
  USER,
  type RunResult,
  type Server,
} from './support/process.js';
import { USER_SCOPES } from './support/http.js';
import { scaled } from './support/timeouts.js';

/**
 * `myapi tokens ...` as an operator runs it (`node dist/cli.js`, built by `npm run build`)
 * while a server runs on the same database: the embedded one (the CLI goes through the
 * server's socket) and a PostgreSQL database. The tokens it makes work at the server's HTTP API.
 */

const RUN_TIMEOUT_MS = scaled(60_000);
const HEADER = 'token_id\tname\tprefix\tscope\tcreated\tlast_used\texpires';
const PAT = /^myapi_pat_[0-9A-Za-z]{49}$/;

function show(args: string[], result: RunResult): string {
  return `myapi ${args.join(' ')}: exit ${String(result.code)}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
}

type Target = 'embedded' | 'postgres';
const targets: Target[] = databaseKinds().includes('postgres')
  ? ['embedded', 'postgres']
  : ['embedded'];

// One target at a time: an embedded server starting beside a PostgreSQL one on a busy machine
// is slow enough already.
describe('myapi tokens commands', { concurrency: 1 }, () => {
  for (const target of targets) {
    describe(`on ${target}`, { concurrency: 1, timeout: scaled(600_000) }, () => {
      let cwd: string;
      let env: Record<string, string>;
      let server: Server;
      let drop: () => Promise<void> = async () => undefined;

      const cli = (args: string[], extra: Record<string, string> = {}) =>
        runCommand(args, { cwd, env: { ...env, ...extra }, timeoutMs: RUN_TIMEOUT_MS });
      const succeeds = async (args: string[], extra: Record<string, string> = {}) => {
        const result = await cli(args, extra);
        assert.equal(result.code, 0, show(args, result));
        return result;
      };
      const fails = async (args: string[]) => {
        const result = await cli(args);
        assert.equal(result.code, 1, show(args, result));
        assert.equal(result.stdout, '', show(args, result));
        assert.ok(!result.stderr.includes('    at '), `stack trace:\n${show(args, result)}`);
        return result.stderr;
      };
      const me = (token: string) =>
        fetch(`${server.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
      const list = async () => {
        const result = await succeeds(['tokens', 'list', USER.email]);
        const [header, ...rows] = lines(result.stdout);
        assert.equal(header, HEADER);
        return rows.map((row) => row.split('\t'));
      };

      before(async () => {
        cwd = tempDir();
        env = {};
        if (target === 'postgres') {
          const database = await createServerDatabase();
          drop = database.drop;
          env = { MYAPI_DATABASE__DSN: database.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
          await succeeds(['migrate']);
        }
        // The server first, as users start it: the user is then made through its socket.
        server = await startServer(cwd, env);
        await succeeds(CREATE_USER_ARGS);
      });
      after(async () => {
        await server.stop();
        await drop();
      });

      it('creates a token whose secret alone is on stdout, and the server takes it', async () => {
        const args = ['tokens', 'create', USER.email, '--name', 'ci job', '--expires-days', '10'];
        const created = await succeeds(args);
        const secret = created.stdout.trim();
        assert.match(secret, PAT, show(args, created));
        const expected = `created token ID 'ci job' for ${USER.email} (${USER_SCOPES}), expires 20`;
        assert.equal(
          created.stderr.replace(/[0-9a-f-]{36}/, 'ID').slice(0, expected.length),
          expected,
        );
        const answer = await me(secret);
        assert.equal(answer.status, 200);
        assert.equal(((await answer.json()) as { email: string }).email, USER.email);

        // The server records the use; the list shows it (a write after the answer: poll).
        const deadline = Date.now() + scaled(10_000);
        let row: string[] | undefined;
        for (;;) {
          row = (await list()).find((fields) => fields[1] === 'ci job');
          if (row?.[5] !== '-' || Date.now() > deadline) break;
          await delay(200);
        }
        assert.ok(row !== undefined);
        const [tokenId, name, prefix, scope, created_at, lastUsed, expires] = row;
        assert.match(tokenId ?? '', /^[0-9a-f-]{36}$/);
        assert.equal(name, 'ci job');
        assert.equal(prefix, secret.slice(0, 16));
        assert.equal(scope, USER_SCOPES);
        assert.ok(!Number.isNaN(Date.parse(created_at ?? '')));
        assert.ok(!Number.isNaN(Date.parse(lastUsed ?? '')), `last used: ${lastUsed ?? ''}`);
        const days = (Date.parse(expires ?? '') - Date.now()) / 86_400_000;
        assert.ok(days > 9.9 && days <= 10, String(days));
      });

      it('revokes a token: the running server refuses it', async () => {
        const secret = (
          await succeeds(['tokens', 'create', USER.email, '--name', 'short'])
        ).stdout.trim();
        assert.equal((await me(secret)).status, 200);
        const row = (await list()).find((fields) => fields[1] === 'short');
        const tokenId = row?.[0] ?? '';
        const revoked = await succeeds(['tokens', 'revoke', USER.email, tokenId]);
        assert.equal(revoked.stdout, `revoked token ${tokenId} of ${USER.email}\n`);
        assert.ok(!(await list()).some((fields) => fields[0] === tokenId));
        // Heard at once on PostgreSQL (NOTIFY); within MYAPI_TOKEN_RECHECK_SECONDS (1 s) otherwise.
        const deadline = Date.now() + scaled(5000);
        let status = 200;
        while (status === 200 && Date.now() < deadline) {
          status = (await me(secret)).status;
          if (status === 200) await delay(200);
        }
        assert.equal(status, 401);
        const again = await fails(['tokens', 'revoke', USER.email, tokenId]);
        assert.equal(lines(again).at(-1), `myapi: error: Token ${tokenId} not found`);
      });

      it('refuses what the rules refuse, each with one line', async () => {
        assert.match(
          await fails(['tokens', 'create', USER.email, '--name', 'x', '--no-expiry']),
          /^myapi: error: tokens must expire on this server \(MYAPI_ACCESS_TOKENS__ALLOW_NO_EXPIRY is off\)\n$/,
        );
        assert.match(
          await fails(['tokens', 'create', USER.email, '--name', 'x', '--scope', 'users:admin']),
          /^myapi: error: the scope users:admin is not yours to grant\n$/,
        );
        assert.match(
          await fails(['tokens', 'create', 'nobody@myapi.com', '--name', 'x']),
          /^myapi: error: no user with email nobody@myapi\.com\n$/,
        );
        assert.match(await fails(['tokens', 'revoke', USER.email, 'not-an-id']), /token_id/);
        assert.match(
          await fails(['tokens', 'create', USER.email, '--name', 'x', '--expires-days', '0']),
          /days/,
        );

        assert.match(
          await fails([
            'tokens',
            'create',
            USER.email,
            '--name',
            'x',
            '--expires-days',
            '3',
            '--no-expiry',
          ]),
          /cannot be used with option '--no-expiry'/,
        );

        const forever = await succeeds(
          ['tokens', 'create', USER.email, '--name', 'forever', '--no-expiry'],
          { MYAPI_ACCESS_TOKENS__ALLOW_NO_EXPIRY: 'true' },
        );
        assert.match(forever.stderr, /expires never/);
        const row = (await list()).find((fields) => fields[1] === 'forever');
        assert.equal(row?.[6], '-');
      });
    });
  }
});
