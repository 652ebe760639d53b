// `myapi keys list|rotate|retire` as subprocesses beside a running `myapi serve`: the server signs
// with the new key and refuses a retired key's tokens without a restart (NOTIFY on PostgreSQL, the
// reload interval on the embedded database, whose secret file is made with mode 0600).
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { createServerDatabase, describeEachDatabase } from './support/databases.js';
import { headerOf } from './support/keys.js';
import {
  createUser,
  delay,
  login,
  newMovies,
  runCli,
  scaled,
  startServer,
  tempDir,
  TEST_TIMEOUT_MS,
  type Server,
} from './support/process.js';

const SECRET = 'cli-keys-secret-that-is-long-enough-0123456789';

describeEachDatabase('myapi keys', { timeout: scaled(180_000) }, (kind) => {
  let cwd: string;
  let env: Record<string, string>;
  let server: Server;
  let drop: (() => Promise<void>) | undefined;

  const cli = async (...args: string[]) => {
    const { exit, proc } = await runCli(args, cwd, env);
    return { code: exit.code, stdout: proc.stdout, stderr: proc.stderr, show: proc.show() };
  };
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + scaled(15_000);
    while (!(await check())) {
      assert.ok(Date.now() < deadline, `not in time: ${what}`);
      await delay(100);
    }
  };

  before(
    async () => {
      cwd = tempDir();
      // On PostgreSQL the change must arrive by NOTIFY: the reload interval is an hour.
      env = { MYAPI_TOKEN_KEYS_RELOAD_SECONDS: kind === 'postgres' ? '3600' : '1' };
      if (kind === 'postgres') {
        const database = await createServerDatabase();
        drop = database.drop;
        env = { ...env, MYAPI_DATABASE__DSN: database.dsn, MYAPI_TOKEN_KEYS_SECRET: SECRET };
        const migrated = await cli('migrate');
        assert.equal(migrated.code, 0, migrated.show);
        assert.equal((await cli('seed')).code, 0);
      }
      server = await startServer(cwd, env);
      await createUser(cwd, env);
    },
    { timeout: TEST_TIMEOUT_MS },
  );
  after(async () => {
    await server.stop('SIGTERM');
    await drop?.();
  });

  it('rotate adds a key the running server signs with; the old one verifies; retire refuses it', async () => {
    if (kind === 'pglite') {
      const secretFile = join(cwd, '.myapi', 'pgdata', 'myapi-keys.secret');
      assert.equal(statSync(secretFile).mode & 0o777, 0o600);
    }
    const first = await login(server.url);
    const firstKid = String(headerOf(first).kid);
    assert.equal(headerOf(first).alg, 'EdDSA');
    const listed = await cli('keys', 'list');
    assert.equal(listed.code, 0, listed.show);
    assert.match(listed.stdout, new RegExp(`^${firstKid}\\tEdDSA\\tsigning\\t`, 'm'));

    const rotated = await cli('keys', 'rotate', '--algorithm', 'ES256');
    assert.equal(rotated.code, 0, rotated.show);
    const newKid = /added signing key (\S+) \(ES256\)/.exec(rotated.stdout)?.[1];
    assert.ok(newKid !== undefined, rotated.stdout);
    let second = '';
    await until('the server signs with the new key', async () => {
      second = await login(server.url);
      return headerOf(second).kid === newKid;
    });
    assert.equal(headerOf(second).alg, 'ES256');
    const jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));
    for (const token of [first, second]) {
      await jwtVerify(token, jwks, { audience: 'myapi', algorithms: ['EdDSA', 'ES256'] });
      assert.equal((await newMovies(server.url, token)).status, 200);
    }
    const after = await cli('keys', 'list');
    assert.match(after.stdout, new RegExp(`^${newKid}\\tES256\\tsigning\\t`, 'm'));
    assert.match(after.stdout, new RegExp(`^${firstKid}\\tEdDSA\\tverifying\\t`, 'm'));

    const refused = await cli('keys', 'retire', newKid);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is the key that signs: run "myapi keys rotate" first/);
    // A thumbprint may start with "-", as a kid copied from `keys list` may.
    for (const kid of ['no-such-kid', '-Rk1-no-such-kid', '--no-such-kid']) {
      const unknown = await cli('keys', 'retire', kid);
      assert.equal(unknown.code, 1, unknown.show);
      assert.match(unknown.stderr, new RegExp(`no signing key ${kid} still in use`));
    }

    const retired = await cli('keys', 'retire', firstKid);
    assert.equal(retired.code, 0, retired.show);
    await until('the server refuses the retired key', async () => {
      return (await newMovies(server.url, first)).status === 401;
    });
    assert.equal((await newMovies(server.url, second)).status, 200);
    assert.match(
      (await cli('keys', 'list')).stdout,
      new RegExp(`^${firstKid}\\tEdDSA\\tretired\\t`, 'm'),
    );
    await server.assertLogsClean([first, second, SECRET]);
  });
});
