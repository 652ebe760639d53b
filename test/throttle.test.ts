import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { openDatabase, type Database } from '../src/backend/database.js';
import { loginFailures } from '../src/models/login_failures.js';
import {
  LoginFailureCRUD,
  LoginThrottle,
  type ThrottleDecision,
  type ThrottleOptions,
} from '../src/services/throttle.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from './support/databases.js';

/** Rules that stay out of the way of the one a test is about. */
const LOOSE = { freeFailures: 1000, maxDelaySeconds: 1 };

function key(kind: string, value: string): string {
  return createHash('sha256').update(`${kind}:${value}`).digest('hex');
}

let serial = 0;
/** A fresh account or address, so the tests sharing one database never share counters. */
function fresh(prefix: string): string {
  serial += 1;
  return `${prefix}-${serial}-${process.pid}`;
}

const allowed: ThrottleDecision = { allowed: true };
const blocked = (retryAfterSeconds: number): ThrottleDecision => ({
  allowed: false,
  retryAfterSeconds,
});

/** Waits out a refusal's Retry-After (and a little more, for the rounding up). */
async function waitOut(decision: ThrottleDecision): Promise<void> {
  if (decision.allowed) assert.fail('expected a refusal');
  await sleep(decision.retryAfterSeconds * 1000 + 100);
}

for (const kind of databaseKinds()) {
  describe(`LoginThrottle (${kind})`, () => {
    let t: TestDatabase;
    let crud: LoginFailureCRUD;
    const throttle = (options: ThrottleOptions) =>
      new LoginThrottle({ db: t.database.db }, options);
    const failuresOf = async (k: string) => (await crud.getOne(eq(loginFailures.key, k)))?.failures;

    before(async () => {
      t = await createTestDatabase(kind);
      crud = new LoginFailureCRUD(t.database.db, loginFailures);
    });
    after(async () => {
      await t.close();
    });

    it('allows the free failures, then refuses with a Retry-After that doubles up to the cap', async () => {
      const th = throttle({
        pair: { freeFailures: 2, maxDelaySeconds: 2 },
        account: LOOSE,
        address: LOOSE,
      });
      const [account, address] = [fresh('user@example.com'), fresh('10.0.0.1')];
      assert.deepEqual(await th.begin(account, address), allowed);
      assert.deepEqual(await th.begin(account, address), allowed);
      const first = await th.begin(account, address);
      assert.deepEqual(first, blocked(1));
      // A refused attempt is not counted.
      assert.deepEqual(await th.begin(account, address), blocked(1));
      assert.equal(await failuresOf(key('pair', `${account}\n${address}`)), 2);
      await waitOut(first);
      assert.deepEqual(await th.begin(account, address), allowed);
      const second = await th.begin(account, address);
      assert.deepEqual(second, blocked(2));
      await waitOut(second);
      assert.deepEqual(await th.begin(account, address), allowed);
      // 4 s without the cap.
      assert.deepEqual(await th.begin(account, address), blocked(2));
      // Another address for the same account is not held back by this pair.
      assert.deepEqual(await th.begin(account, fresh('10.0.0.2')), allowed);
    });

    it('counts an account across addresses, with a looser cap: a fresh address waits at most its max', async () => {
      const th = throttle({
        pair: { freeFailures: 5, maxDelaySeconds: 900 },
        account: { freeFailures: 3, maxDelaySeconds: 1 },
        address: LOOSE,
      });
      const account = fresh('victim@example.com');
      for (let i = 0; i < 3; i++)
        assert.deepEqual(await th.begin(account, fresh('spray')), allowed);
      let refusal = await th.begin(account, fresh('spray'));
      for (let round = 0; round < 3; round++) {
        // 1 s each round, where the doubling alone would make it 1, 2, 4 s.
        assert.deepEqual(refusal, blocked(1), `round ${round}`);
        await waitOut(refusal);
        assert.deepEqual(await th.begin(account, fresh('real-user')), allowed);
        refusal = await th.begin(account, fresh('spray'));
      }
      // Other accounts are not affected.
      assert.deepEqual(await th.begin(fresh('other@example.com'), fresh('spray')), allowed);
    });

    it('counts an address across accounts', async () => {
      const th = throttle({
        pair: LOOSE,
        account: LOOSE,
        address: { freeFailures: 3, maxDelaySeconds: 5 },
      });
      const address = fresh('192.0.2.7');
      for (let i = 0; i < 3; i++) assert.deepEqual(await th.begin(fresh('a'), address), allowed);
      assert.deepEqual(await th.begin(fresh('a'), address), blocked(1));
      assert.deepEqual(await th.begin(fresh('a'), fresh('192.0.2.8')), allowed);
    });

    it('a success clears the pair and takes back the up-front count, never below zero', async () => {
      const th = throttle({
        pair: { freeFailures: 2, maxDelaySeconds: 60 },
        account: { freeFailures: 10, maxDelaySeconds: 60 },
        address: { freeFailures: 10, maxDelaySeconds: 60 },
      });
      const [account, address] = [fresh('me@example.com'), fresh('198.51.100.1')];
      assert.deepEqual(await th.begin(account, address), allowed);
      assert.deepEqual(await th.begin(account, address), allowed);
      await th.succeeded(account, address);
      assert.equal(await failuresOf(key('pair', `${account}\n${address}`)), undefined);
      assert.equal(await failuresOf(key('account', account)), 1);
      assert.equal(await failuresOf(key('address', address)), 1);
      // Without the success this pair would wait a second now.
      assert.deepEqual(await th.begin(account, address), allowed);
      assert.deepEqual(await th.begin(account, address), allowed);
      await th.succeeded(account, address);
      await th.succeeded(account, address);
      await th.succeeded(account, address);
      assert.equal(await failuresOf(key('account', account)), 0);
      assert.equal(await failuresOf(key('address', address)), 0);
      // A success with nothing counted is harmless.
      await th.succeeded(fresh('new@example.com'), fresh('198.51.100.2'));
    });

    it('starts a counter again once its last failure is older than the reset window', async () => {
      const th = throttle({
        pair: { freeFailures: 2, maxDelaySeconds: 2 },
        account: LOOSE,
        address: LOOSE,
        resetAfterSeconds: 1,
      });
      const [account, address] = [fresh('reset@example.com'), fresh('203.0.113.1')];
      assert.deepEqual(await th.begin(account, address), allowed);
      assert.deepEqual(await th.begin(account, address), allowed);
      await waitOut(await th.begin(account, address));
      await sleep(200);
      // Counting from zero: two more go through (without the reset the second would wait 2 s).
      assert.deepEqual(await th.begin(account, address), allowed);
      assert.deepEqual(await th.begin(account, address), allowed);
      assert.deepEqual(await th.begin(account, address), blocked(1));
    });

    it('prunes expired counters, keeping blocked and recent ones', async () => {
      const [stale, staleBlocked, recent] = [fresh('stale'), fresh('blocked'), fresh('recent')];
      // Hours either side of now: the process clock is close enough to the database's for that.
      const hours = (n: number) => new Date(Date.now() + n * 3_600_000);
      await crud.addAll([
        { key: stale, failures: 3, last_failed_at: hours(-2), blocked_until: hours(-2) },
        { key: staleBlocked, failures: 9, last_failed_at: hours(-2), blocked_until: hours(1) },
        { key: recent, failures: 1, last_failed_at: hours(0), blocked_until: hours(0) },
      ]);
      // A new throttle prunes on its first attempt (then at most once a minute).
      await throttle({}).begin(fresh('p@example.com'), fresh('192.0.2.99'));
      assert.equal(await failuresOf(stale), undefined);
      assert.equal(await failuresOf(staleBlocked), 9);
      assert.equal(await failuresOf(recent), 1);
    });

    it('refuses rules without a free attempt or a delay', () => {
      assert.throws(
        () => throttle({ pair: { freeFailures: 0, maxDelaySeconds: 1 } }),
        /pair.freeFailures/,
      );
      assert.throws(
        () => throttle({ account: { freeFailures: 1, maxDelaySeconds: 0 } }),
        /account.maxDelaySeconds/,
      );
      assert.throws(() => throttle({ resetAfterSeconds: 0 }), /resetAfterSeconds/);
    });

    describe('across connections and processes', () => {
      let second: Database | undefined;
      /** On PostgreSQL a second pool on the same database, as another process has; PGlite in memory has one. */
      const handles = () => [t.database, ...(second === undefined ? [] : [second])];

      before(async () => {
        if (kind === 'postgres') second = await openDatabase(t.settings, { role: 'tool' });
      });
      after(async () => {
        await second?.close();
      });

      it('20 parallel attempts on one pair with 5 free failures let exactly 5 through', async () => {
        const options = {
          pair: { freeFailures: 5, maxDelaySeconds: 60 },
          account: LOOSE,
          address: LOOSE,
        };
        const throttles = handles().map((h) => new LoginThrottle({ db: h.db }, options));
        const [account, address] = [fresh('burst@example.com'), fresh('203.0.113.9')];
        const decisions = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (throttles[i % throttles.length] as LoginThrottle).begin(account, address),
          ),
        );
        assert.equal(decisions.filter((d) => d.allowed).length, 5);
        for (const d of decisions) if (!d.allowed) assert.equal(d.retryAfterSeconds, 1);
        assert.equal(await failuresOf(key('pair', `${account}\n${address}`)), 5);
      });

      it('parallel attempts and successes on one account from many addresses never deadlock', async () => {
        const options = {
          pair: { freeFailures: 50, maxDelaySeconds: 1 },
          account: { freeFailures: 1000, maxDelaySeconds: 1 },
          address: { freeFailures: 1000, maxDelaySeconds: 1 },
        };
        const throttles = handles().map((h) => new LoginThrottle({ db: h.db }, options));
        const account = fresh('busy@example.com');
        const addresses = Array.from({ length: 8 }, () => fresh('198.18.0.1'));
        await Promise.all(
          Array.from({ length: 40 }, async (_, i) => {
            const th = throttles[i % throttles.length] as LoginThrottle;
            const address = addresses[i % addresses.length] as string;
            assert.deepEqual(await th.begin(account, address), allowed);
            if (i % 2 === 0) await th.succeeded(account, address);
          }),
        );
        assert.equal(await failuresOf(key('account', account)), 20);
      });

      it(
        'two database handles (two processes) share the counters',
        { skip: kind === 'pglite' && 'PGlite in memory belongs to one process' },
        async () => {
          const options = {
            pair: { freeFailures: 2, maxDelaySeconds: 60 },
            account: LOOSE,
            address: LOOSE,
          };
          const [one, two] = handles().map((h) => new LoginThrottle({ db: h.db }, options)) as [
            LoginThrottle,
            LoginThrottle,
          ];
          const [account, address] = [fresh('shared@example.com'), fresh('203.0.113.50')];
          assert.deepEqual(await one.begin(account, address), allowed);
          assert.deepEqual(await two.begin(account, address), allowed);
          assert.deepEqual(await one.begin(account, address), blocked(1));
          assert.deepEqual(await two.begin(account, address), blocked(1));
          await two.succeeded(account, address);
          assert.deepEqual(await one.begin(account, address), allowed);
        },
      );
    });
  });
}
