// Parallel bursts of guesses: the login throttle lets at most its free failures reach the password check.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { accountOptions, createServices } from '../src/services/index.js';
import { sql } from 'drizzle-orm';
import { openDatabase, queryRows, type Database } from '../src/backend/database.js';
import { LoginThrottle, type ThrottleOptions } from '../src/services/throttle.js';
import { appOn, type AppOnDatabase } from './support/apps.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { form } from './support/http.js';

const PAIR_LIMIT = 5;
const ACCOUNT_LIMIT = 20;
const BURST = 60;

let serial = 0;
function fresh(prefix: string): string {
  serial += 1;
  return `${prefix}-${serial}-${process.pid}`;
}

describeEachDatabase('login throttle under a parallel burst', (kind) => {
  let t: TestDatabase;
  let second: Database | undefined;
  let apps: AppOnDatabase[] = [];

  before(async () => {
    t = await createTestDatabase(kind);
    // On PostgreSQL a second pool and a second app on the same database, as a second process
    // has; PGlite in memory belongs to one process.
    if (kind === 'postgres') second = await openDatabase(t.settings, { role: 'tool' });
    const handles = second === undefined ? [t.database] : [t.database, second];
    apps = await Promise.all(handles.map((database) => appOn(t, {}, database)));
  });
  after(async () => {
    for (const { app } of apps) await app.close();
    await second?.close();
    await t.close();
  });

  describe('through the service', () => {
    const throttles = (options: ThrottleOptions = {}) =>
      [t.database, ...(second === undefined ? [] : [second])].map(
        (h) => new LoginThrottle(h, options),
      );
    /** `BURST` wrong guesses at once, spread over the handles; how many reached the check. */
    const burst = async (account: string, address: (i: number) => string) => {
      const ths = throttles();
      let checked = 0;
      const outcomes = await Promise.all(
        Array.from({ length: BURST }, async (_, i) => {
          const th = ths[i % ths.length] as LoginThrottle;
          const decision = await th.begin(account, address(i));
          if (!decision.allowed) return decision.retryAfterSeconds;
          await th.settle(decision.attempt, async () => {
            checked += 1;
            // The check takes a while, as a hash does, so the burst overlaps it.
            await new Promise((resolve) => setTimeout(resolve, 20));
            return { ok: false };
          });
          return 0;
        }),
      );
      return { checked, refusals: outcomes.filter((o) => o > 0) };
    };

    it('checks that fail in parallel give their places back beside new attempts, without a deadlock', async () => {
      const ths = throttles();
      // One account and one address: every attempt takes the same three counters.
      const [account, address] = [fresh('busy@example.com'), fresh('192.0.2.1')];
      const hasherDown = new Error('the hasher is down');
      for (let round = 0; round < 8; round++) {
        const outcomes = await Promise.allSettled(
          Array.from({ length: 16 }, async (_, i) => {
            const th = ths[i % ths.length] as LoginThrottle;
            const decision = await th.begin(account, address);
            if (!decision.allowed) return;
            await th.settle(decision.attempt, () => Promise.reject(hasherDown));
          }),
        );
        const unexpected = outcomes.filter(
          (o) => o.status === 'rejected' && o.reason !== hasherDown,
        );
        assert.deepEqual(unexpected, [], `round ${round}`);
      }
    });

    it(`one address: at most ${PAIR_LIMIT} of ${BURST} parallel guesses are checked`, async () => {
      const address = fresh('203.0.113.1');
      const { checked, refusals } = await burst(fresh('victim@example.com'), () => address);
      assert.equal(checked, PAIR_LIMIT);
      assert.equal(refusals.length, BURST - PAIR_LIMIT);
    });

    it(`${BURST} addresses: at most ${ACCOUNT_LIMIT} parallel guesses on one account are checked`, async () => {
      const { checked, refusals } = await burst(fresh('sprayed@example.com'), (i) =>
        fresh(`198.51.100.${i}`),
      );
      assert.equal(checked, ACCOUNT_LIMIT);
      assert.equal(refusals.length, BURST - ACCOUNT_LIMIT);
    });

    it('a check that throws gives its place back: no failure counted, nothing held', async () => {
      const [th] = throttles({ pair: { freeFailures: 1, maxDelaySeconds: 60 } }) as [LoginThrottle];
      const [account, address] = [fresh('flaky@example.com'), fresh('203.0.113.2')];
      for (let i = 0; i < 3; i++) {
        const decision = await th.begin(account, address);
        assert.ok(decision.allowed, `attempt ${i} allowed`);
        await assert.rejects(
          th.settle(decision.attempt, () => Promise.reject(new Error('database gone'))),
          /database gone/,
        );
      }
      // With the places still held, this one would wait 5 s and be refused.
      const started = performance.now();
      const decision = await th.begin(account, address);
      assert.ok(decision.allowed);
      assert.ok(performance.now() - started < 1000);
    });
  });

  describe('over HTTP', () => {
    const password = 'the right password 123';
    const newUser = async () => {
      const email = `${fresh('burst')}@example.com`;
      await createServices(t.database, { accounts: accountOptions(t.settings) }).users.createUser({
        name: 'burst',
        email,
        password,
      });
      return email;
    };
    /** POST /token through the apps in turn (two instances on PostgreSQL). */
    const tokenCalls = (
      n: number,
      fields: (i: number) => Record<string, string>,
      from: (i: number) => string,
    ) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => {
          const { app } = apps[i % apps.length] as AppOnDatabase;
          return app.inject({
            method: 'POST',
            url: '/token',
            remoteAddress: from(i),
            ...form(fields(i)),
          });
        }),
      );

    it(`${BURST} parallel wrong passwords from one address: at most ${PAIR_LIMIT} are verified, the rest 429`, async () => {
      const email = await newUser();
      const responses = await tokenCalls(
        BURST,
        (i) => ({ username: email, password: `guess-${i}` }),
        () => '203.0.113.77',
      );
      const statuses = responses.map((r) => r.statusCode);
      const verified = statuses.filter((s) => s === 401).length;
      assert.equal(verified, PAIR_LIMIT, statuses.join());
      for (const r of responses.filter((r) => r.statusCode !== 401)) {
        assert.equal(r.statusCode, 429, r.body);
        assert.ok(Number(r.headers['retry-after']) >= 1, String(r.headers['retry-after']));
        assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
        assert.equal(r.json<{ error: string }>().error, 'slow_down');
      }
    });

    it(`${BURST} parallel wrong passwords from ${BURST} addresses: at most ${ACCOUNT_LIMIT} are verified`, async () => {
      const email = await newUser();
      const responses = await tokenCalls(
        BURST,
        (i) => ({ username: email, password: `guess-${i}` }),
        (i) => `192.0.2.${i + 1}`,
      );
      const statuses = responses.map((r) => r.statusCode);
      assert.equal(statuses.filter((s) => s === 401).length, ACCOUNT_LIMIT, statuses.join());
      assert.equal(statuses.filter((s) => s === 429).length, BURST - ACCOUNT_LIMIT);
    });

    // PGlite is one session: nothing there waits on a row lock.
    if (kind === 'postgres') {
      it(`${BURST} parallel guesses on one account queue in each process, not on the counters' rows`, async () => {
        const email = await newUser();
        // Its own connection, so a pool the burst filled cannot hold the sampling back.
        const observer = await openDatabase(t.settings, { role: 'tool', poolMax: 1 });
        let mostWaiting = 0;
        const burstOver = new AbortController();
        const sampling = (async () => {
          while (!burstOver.signal.aborted) {
            const [row] = await queryRows<{ n: number }>(
              observer.db,
              sql`select count(*)::int as n from pg_stat_activity
                  where datname = current_database() and wait_event_type = 'Lock'`,
            );
            mostWaiting = Math.max(mostWaiting, row?.n ?? 0);
          }
        })();
        try {
          const responses = await tokenCalls(
            BURST,
            (i) => ({ username: email, password: `guess-${i}` }),
            (i) => `198.51.100.${i + 1}`,
          );
          const statuses = responses.map((r) => r.statusCode);
          assert.ok(
            statuses.every((s) => s === 401 || s === 429),
            statuses.join(),
          );
        } finally {
          burstOver.abort();
          await sampling;
          await observer.close();
        }
        // Each process runs one transaction at a time on these counters: only the other
        // process's can wait for its row locks, never a queue of pooled connections.
        assert.ok(mostWaiting <= apps.length - 1, `${mostWaiting} connections waited on a lock`);
      });
    }

    it('a user logging in 12 times at once with the right password gets 12 tokens', async () => {
      const email = await newUser();
      const responses = await tokenCalls(
        12,
        () => ({ username: email, password }),
        () => '203.0.113.78',
      );
      assert.deepEqual(
        responses.map((r) => r.statusCode),
        Array(12).fill(200),
      );
    });
  });
});
