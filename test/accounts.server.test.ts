import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ADMIN_DSN, TOKEN_KEY, createServerDatabase } from './support/databases.js';
import {
  createUser,
  delay,
  runCli,
  startServer,
  tempDir,
  TEST_TIMEOUT_MS,
  USER,
  WRONG_PASSWORD,
  type Server,
} from './support/process.js';

/**
 * Two `myapi serve` processes on one PostgreSQL database, as one process per core or several
 * machines run it: the brute-force counters and revocations must hold across them. The servers
 * trust X-Forwarded-For (MYAPI_TRUST_PROXY=true), so one test machine can play many clients.
 */

/**
 * Long enough that only PostgreSQL's NOTIFY can tell the other process in time: the bounds
 * below prove the news travels, not that the cache expired.
 */
const RECHECK_SECONDS = 60;
const NOTIFY_BOUND_MS = 500;

interface TokenPair {
  access_token: string;
  refresh_token: string;
}

function tokenCall(
  server: Server,
  fields: Record<string, string>,
  address = '198.51.100.1',
): Promise<Response> {
  return fetch(`${server.url}/token`, {
    method: 'POST',
    body: new URLSearchParams(fields),
    headers: { 'x-forwarded-for': address },
  });
}

const VICTIM = { name: 'victim', email: 'victim@myapi.com', password: 'a victim passphrase' };

async function passwordLogin(
  server: Server,
  address?: string,
  user: { email: string; password: string } = USER,
): Promise<TokenPair> {
  const response = await tokenCall(
    server,
    { username: user.email, password: user.password },
    address,
  );
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text) as TokenPair;
}

async function status(server: Server, token: string): Promise<number> {
  const response = await fetch(`${server.url}/movies/1`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await response.arrayBuffer();
  return response.status;
}

/** Milliseconds until the token is refused on the server, polling every 25 ms. */
async function msUntilRefused(server: Server, token: string, limitMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    if ((await status(server, token)) === 401) return Date.now() - started;
    await delay(25);
  }
  assert.fail(`the token still worked ${limitMs} ms after its revocation`);
}

describe(
  'accounts across two server processes (PostgreSQL)',
  { timeout: TEST_TIMEOUT_MS * 3 },
  () => {
    let database: { dsn: string; drop: () => Promise<void> };
    let cwd: string;
    let env: Record<string, string>;
    let a: Server;
    let b: Server;

    before(async () => {
      database = await createServerDatabase();
      cwd = tempDir();
      env = {
        MYAPI_DATABASE__DSN: database.dsn,
        MYAPI_TOKEN_KEY: TOKEN_KEY,
        MYAPI_TRUST_PROXY: 'true',
        MYAPI_TOKEN_RECHECK_SECONDS: String(RECHECK_SECONDS),
      };
      for (const command of ['migrate', 'seed']) {
        const { exit, proc } = await runCli([command], cwd, env);
        assert.equal(exit.code, 0, proc.show());
      }
      await createUser(cwd, env);
      const victim = ['create-user', '--name', VICTIM.name, '--email', VICTIM.email];
      const created = await runCli([...victim, '--password', VICTIM.password], cwd, env);
      assert.equal(created.exit.code, 0, created.proc.show());
      [a, b] = await Promise.all([startServer(cwd, env), startServer(cwd, env)]);
    });

    after(async () => {
      await Promise.all([a.stop(), b.stop()]);
      await database.drop();
    });

    it('throttles failed logins per account and address across both processes', async () => {
      const address = '198.51.100.7';
      const wrong = (server: Server) =>
        tokenCall(server, { username: USER.email, password: WRONG_PASSWORD }, address);
      // Five free failures, alternating between the processes.
      for (let i = 0; i < 5; i++) {
        const response = await wrong(i % 2 === 0 ? a : b);
        assert.equal(response.status, 401, await response.text());
      }
      for (const server of [a, b]) {
        const refused = await tokenCall(
          server,
          { username: USER.email, password: USER.password },
          address,
        );
        const body = (await refused.json()) as { error?: string; detail?: string };
        assert.equal(refused.status, 429, 'even the right password waits its turn');
        assert.equal(refused.headers.get('retry-after'), '1');
        assert.equal(body.error, 'slow_down');
        assert.match(String(body.detail), /Too many failed logins/);
      }
      // Another client of the same account is not held back by this pair.
      await passwordLogin(b, '198.51.100.8');
      await delay(1100);
      await passwordLogin(a, address);
    });

    it('a scripted attack from many addresses slows strangers, never the real user', async () => {
      // The real user logged in from home before: that pair is known.
      const home = '203.0.113.50';
      await passwordLogin(a, home, VICTIM);
      const outcomes: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 30; i++) {
        const response = await tokenCall(
          i % 2 === 0 ? a : b,
          { username: VICTIM.email, password: `guess-${i}` },
          `192.0.2.${i + 1}`,
        );
        outcomes.push(response.status);
        if (response.status === 429) retryAfter = response.headers.get('retry-after');
        await response.arrayBuffer();
      }
      // 20 guesses from any address are free; after that the account makes strangers wait.
      assert.deepEqual(
        outcomes.slice(0, 20),
        Array.from({ length: 20 }, () => 401),
      );
      assert.ok(outcomes.slice(20).includes(429), outcomes.join());
      assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, String(retryAfter));
      const stranger = await tokenCall(
        b,
        { username: VICTIM.email, password: VICTIM.password },
        '192.0.2.200',
      );
      await stranger.arrayBuffer();
      assert.equal(stranger.status, 429, 'a new address waits while the account is under attack');
      await passwordLogin(b, home, VICTIM);
    });

    it('a login revoked in one process stops its tokens in the other at once (NOTIFY)', async (t) => {
      const login = await passwordLogin(a, '203.0.113.60');
      assert.equal(await status(b, login.access_token), 200);
      const revoke = await fetch(`${a.url}/token/revoke`, {
        method: 'POST',
        body: new URLSearchParams({ token: login.refresh_token }),
      });
      assert.equal(revoke.status, 200);
      assert.equal(await status(a, login.access_token), 401, 'at once where it was revoked');
      const ms = await msUntilRefused(b, login.access_token, NOTIFY_BOUND_MS * 4);
      t.diagnostic(`refused by the other process ${ms} ms after the revocation`);
      assert.ok(ms <= NOTIFY_BOUND_MS, `took ${ms} ms`);
    });

    it('hears revocations again after its listening connection was cut', async (t) => {
      const login = await passwordLogin(a, '203.0.113.63');
      assert.equal(await status(b, login.access_token), 200);
      const name = new URL(database.dsn).pathname.slice(1);
      const admin = new pg.Client({ connectionString: ADMIN_DSN });
      await admin.connect();
      try {
        const { rowCount } = await admin.query(
          `select pg_terminate_backend(pid) from pg_stat_activity
          where datname = $1 and query like 'listen %'`,
          [name],
        );
        assert.equal(rowCount, 2, 'one listening connection per server');
      } finally {
        await admin.end();
      }
      // The first reconnect comes after a second.
      await delay(1500);
      await fetch(`${a.url}/token/revoke`, {
        method: 'POST',
        body: new URLSearchParams({ token: login.access_token }),
      });
      const ms = await msUntilRefused(b, login.access_token, NOTIFY_BOUND_MS * 4);
      t.diagnostic(`refused by the other process ${ms} ms after the revocation`);
      assert.ok(ms <= NOTIFY_BOUND_MS, `took ${ms} ms`);
    });

    it('a refresh token replayed on the other process ends the login on both', async () => {
      const login = await passwordLogin(a, '203.0.113.61');
      const rotated = await tokenCall(a, {
        grant_type: 'refresh_token',
        refresh_token: login.refresh_token,
      });
      assert.equal(rotated.status, 200);
      const next = (await rotated.json()) as TokenPair;
      const replay = await tokenCall(b, {
        grant_type: 'refresh_token',
        refresh_token: login.refresh_token,
      });
      assert.equal(replay.status, 400);
      assert.equal(((await replay.json()) as { error: string }).error, 'invalid_grant');
      const again = await tokenCall(a, {
        grant_type: 'refresh_token',
        refresh_token: next.refresh_token,
      });
      assert.equal(again.status, 400, 'the thief and the victim both lose the login');
      await again.arrayBuffer();
      await msUntilRefused(a, next.access_token, NOTIFY_BOUND_MS * 4);
      await b.waitForOutput(
        () => b.stdout.includes('refresh token reused: login revoked (suspected token theft)'),
        'the theft warning in the log',
      );
      for (const server of [a, b]) {
        await server.assertLogsClean([
          login.refresh_token,
          next.refresh_token,
          USER.password,
          TOKEN_KEY,
        ]);
      }
    });

    it('disabling a user with the CLI stops their live tokens in both processes', async (t) => {
      const login = await passwordLogin(b, '203.0.113.62');
      assert.equal(await status(a, login.access_token), 200);
      const { exit, proc } = await runCli(['users', 'deactivate', USER.email], cwd, env);
      assert.equal(exit.code, 0, proc.show());
      const [msA, msB] = await Promise.all([
        msUntilRefused(a, login.access_token, NOTIFY_BOUND_MS * 4),
        msUntilRefused(b, login.access_token, NOTIFY_BOUND_MS * 4),
      ]);
      t.diagnostic(`refused ${msA} ms and ${msB} ms after the CLI exited`);
      assert.ok(Math.max(msA, msB) <= NOTIFY_BOUND_MS, `${msA} ms, ${msB} ms`);
      const refused = await tokenCall(a, { username: USER.email, password: USER.password });
      assert.equal(refused.status, 401);
      assert.match(await refused.text(), /This account is disabled/);
      const activate = await runCli(['users', 'activate', USER.email], cwd, env);
      assert.equal(activate.exit.code, 0, activate.proc.show());
      await passwordLogin(b);
    });
  },
);
