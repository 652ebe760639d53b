// A server stopped while logins are in flight, their clients already gone (a load balancer's
// retry, a benchmark's end): the logins still reach their verdict, so the throttle keeps no place
// for them, and the next server lets the same account log in at once.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../src/backend/config.js';
import { openDatabase, queryRows } from '../src/backend/database.js';
import { databaseKinds } from './support/databases.js';
import { servedDatabase } from './support/served.js';
import { postToken, startServer, TEST_TIMEOUT_MS, USER } from './support/process.js';

/** The throttle's free failures per account and address (services/throttle.ts DEFAULT_THROTTLE). */
const PAIR_FREE_FAILURES = 5;

/** Sends a whole login request on a raw socket, then hangs up once the server has it. */
function loginAndHangUp(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  const body = new URLSearchParams({ username: USER.email, password: USER.password }).toString();
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        'POST /token HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
          `Content-Length: ${String(body.length)}\r\n\r\n${body}`,
      );
    });
    socket.on('error', reject);
    // The server has read the request by then; the client leaves without its answer.
    setTimeout(() => {
      socket.destroy();
      resolve();
    }, 50);
  });
}

/** Throttle places still held by attempts that never reached a verdict (their lease running). */
async function reservationsHeld(cwd: string, env: Record<string, string>): Promise<number> {
  // The embedded database's default path is relative to the process's directory, not `cwd`.
  const dsn = env.MYAPI_DATABASE__DSN ?? `pglite:${join(cwd, '.myapi', 'pgdata')}`;
  const { settings } = loadSettings({ env: { ...env, MYAPI_DATABASE__DSN: dsn }, cwd });
  const database = await openDatabase(settings, { role: 'tool' });
  try {
    const [row] = await queryRows<{ held: number }>(
      database.db,
      sql`select count(*)::int as held from myapi.login_failures
          where pending > 0 and pending_until > clock_timestamp()`,
    );
    return row?.held ?? -1;
  } finally {
    await database.close();
  }
}

describe('stopping with logins in flight', { timeout: TEST_TIMEOUT_MS * 2 }, () => {
  for (const kind of databaseKinds()) {
    describe(kind, { timeout: TEST_TIMEOUT_MS * 2 }, () => {
      let env: Record<string, string> = {};
      let cwd: string;
      let drop: () => Promise<void> = () => Promise.resolve();

      before(async () => {
        ({ cwd, env, drop } = await servedDatabase(kind, ['migrate']));
      });

      after(async () => {
        await drop();
      });

      it('finishes them before it closes, so the next server admits the account at once', async () => {
        // One hash at a time: the logins queue behind each other, as on a busy server.
        const settings = { ...env, MYAPI_PASSWORDS__CONCURRENCY: '1' };
        const server = await startServer(cwd, settings);
        await Promise.all(
          Array.from({ length: 3 * PAIR_FREE_FAILURES }, () => loginAndHangUp(server.url)),
        );
        const stopped = await server.stop();
        assert.equal(stopped.code, 0, server.show());
        assert.doesNotMatch(server.stdout, /Cannot use a pool after calling end/, server.show());
        assert.equal(await reservationsHeld(cwd, env), 0, server.show());

        // As many logins at once as the pair's free failures: each one's place must be free.
        const next = await startServer(cwd, settings);
        try {
          const statuses = await Promise.all(
            Array.from({ length: PAIR_FREE_FAILURES }, async () => {
              const response = await postToken(next.url, USER.email, USER.password);
              await response.arrayBuffer();
              return response.status;
            }),
          );
          assert.deepEqual(
            statuses,
            Array<number>(PAIR_FREE_FAILURES).fill(200),
            `${String(statuses)}\n${next.show()}`,
          );
        } finally {
          assert.equal((await next.stop()).code, 0, next.show());
        }
      });
    });
  }
});
