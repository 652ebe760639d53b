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
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';

/** Rules that stay out of the way of the one a test is about. */
const LOOSE = { freeFailures: 1000, maxDelaySeconds: 1 };

function key(kind: string, value: string): string {
  return createHash('sha256').update(`${kind}:${value}`).digest('hex');
}
const pairKey = (account: string, address: string) => key('pair', `${account}\n${address}`);

let serial = 0;
/** A fresh account or address, so the tests sharing one database never share counters. */
function fresh(prefix: string): string {
  serial += 1;
  return `${prefix}-${serial}-${process.pid}`;
}

/** A decision without its attempt handle: what a test compares. */
type Outcome = { allowed: true } | { allowed: false; retryAfterSeconds: number };

const allowed: Outcome = { allowed: true };
const blocked = (retryAfterSeconds: number): Outcome => ({ allowed: false, retryAfterSeconds });

function outcome(decision: ThrottleDecision): Outcome {
  return decision.allowed ? allowed : blocked(decision.retryAfterSeconds);
}

/**
 * One login as POST /token drives it: `begin`, and when allowed, the password check's verdict
 * (`failed` for a wrong password, `succeeded` for the right one).
 */
async function login(
  th: LoginThrottle,
  account: string,
  address: string,
  password: 'wrong' | 'right' = 'wrong',
): Promise<Outcome> {
  const decision = await th.begin(account, address);
  if (decision.allowed) {
    await (password === 'wrong' ? th.failed(decision.attempt) : th.succeeded(decision.attempt));
  }
  return outcome(decision);
}

/** Asserts a refusal whose Retry-After is within 1..max seconds. */
function assertRefused(o: Outcome, maxSeconds: number): void {
  if (o.allowed) assert.fail('expected a refusal');
  assert.ok(
    o.retryAfterSeconds >= 1 && o.retryAfterSeconds <= maxSeconds,
    `Retry-After ${o.retryAfterSeconds} s, max ${maxSeconds} s`,
  );
}

/** Waits out a refusal's Retry-After (and a little more, for the rounding up). */
async function waitOut(o: Outcome): Promise<void> {
  if (o.allowed) assert.fail('expected a refusal');
  await sleep(o.retryAfterSeconds * 1000 + 100);
}

describeEachDatabase('LoginThrottle', (kind) => {
  let t: TestDatabase;
  let crud: LoginFailureCRUD;
  const throttle = (options: ThrottleOptions) => new LoginThrottle(t.database, options);
  const failuresOf = async (k: string) => (await crud.getOne(eq(loginFailures.key, k)))?.failures;

  before(async () => {
    t = await createTestDatabase(kind);
    crud = new LoginFailureCRUD(t.database, loginFailures);
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
    assert.deepEqual(await login(th, account, address), allowed);
    assert.deepEqual(await login(th, account, address), allowed);
    const first = await login(th, account, address);
    assert.deepEqual(first, blocked(1));
    // A refused attempt is not counted.
    assert.deepEqual(await login(th, account, address), blocked(1));
    assert.equal(await failuresOf(pairKey(account, address)), 2);
    await waitOut(first);
    assert.deepEqual(await login(th, account, address), allowed);
    const second = await login(th, account, address);
    assert.deepEqual(second, blocked(2));
    await waitOut(second);
    assert.deepEqual(await login(th, account, address), allowed);
    // 4 s without the cap.
    assert.deepEqual(await login(th, account, address), blocked(2));
    // Another address for the same account is not held back by this pair.
    assert.deepEqual(await login(th, account, fresh('10.0.0.2')), allowed);
  });

  it('failed() counts a first failure on clean counters once, and never again what begin counted', async () => {
    const th = throttle({
      pair: { freeFailures: 2, maxDelaySeconds: 2 },
      account: { freeFailures: 10, maxDelaySeconds: 60 },
      address: { freeFailures: 10, maxDelaySeconds: 60 },
    });
    const [account, address] = [fresh('first@example.com'), fresh('10.1.0.1')];
    // Clean: begin counts nothing, failed() counts 1 everywhere. The next attempt is then
    // counted up front (2 = the free failures) and the one after waits 1 s: with no count
    // from failed() it would go through, with a double count it would wait 2 s.
    assert.deepEqual(await login(th, account, address), allowed);
    assert.equal(await failuresOf(pairKey(account, address)), 1);
    assert.equal(await failuresOf(key('account', account)), 1);
    assert.equal(await failuresOf(key('address', address)), 1);
    assert.deepEqual(await login(th, account, address), allowed);
    assert.deepEqual(await login(th, account, address), blocked(1));
    assert.equal(await failuresOf(pairKey(account, address)), 2);
    assert.equal(await failuresOf(key('account', account)), 2);
    assert.equal(await failuresOf(key('address', address)), 2);
    // Mixed: the account holds failures (counted up front), a new address and its pair are
    // clean (counted by failed()); each goes up by exactly one.
    const other = fresh('10.1.0.2');
    assert.deepEqual(await login(th, account, other), allowed);
    assert.equal(await failuresOf(key('account', account)), 3);
    assert.equal(await failuresOf(pairKey(account, other)), 1);
    assert.equal(await failuresOf(key('address', other)), 1);
  });

  it('counts an account across addresses, with a looser cap: a fresh address waits at most its max', async () => {
    const th = throttle({
      pair: { freeFailures: 5, maxDelaySeconds: 900 },
      account: { freeFailures: 3, maxDelaySeconds: 1 },
      address: LOOSE,
    });
    const account = fresh('victim@example.com');
    for (let i = 0; i < 3; i++) assert.deepEqual(await login(th, account, fresh('spray')), allowed);
    let refusal = await login(th, account, fresh('spray'));
    for (let round = 0; round < 3; round++) {
      // 1 s each round, where the doubling alone would make it 1, 2, 4 s.
      assert.deepEqual(refusal, blocked(1), `round ${round}`);
      await waitOut(refusal);
      assert.deepEqual(await login(th, account, fresh('spray')), allowed);
      refusal = await login(th, account, fresh('spray'));
    }
    // Other accounts are not affected.
    assert.deepEqual(await login(th, fresh('other@example.com'), fresh('spray')), allowed);
  });

  it('counts an address across accounts', async () => {
    const th = throttle({
      pair: LOOSE,
      account: LOOSE,
      address: { freeFailures: 3, maxDelaySeconds: 5 },
    });
    const address = fresh('192.0.2.7');
    for (let i = 0; i < 3; i++) assert.deepEqual(await login(th, fresh('a'), address), allowed);
    assert.deepEqual(await login(th, fresh('a'), address), blocked(1));
    assert.deepEqual(await login(th, fresh('a'), fresh('192.0.2.8')), allowed);
  });

  it('a success clears the pair and takes back the up-front count, never below zero', async () => {
    const th = throttle({
      pair: { freeFailures: 2, maxDelaySeconds: 60 },
      account: { freeFailures: 10, maxDelaySeconds: 60 },
      address: { freeFailures: 10, maxDelaySeconds: 60 },
    });
    const [account, address] = [fresh('me@example.com'), fresh('198.51.100.1')];
    assert.deepEqual(await login(th, account, address), allowed);
    // Counted up front on all three (the pair reaching its 2 free failures, so blocked 1 s)...
    assert.deepEqual(await login(th, account, address, 'right'), allowed);
    // ...and taken back: the pair is gone, the account and the address hold the first failure.
    assert.equal(await failuresOf(pairKey(account, address)), undefined);
    assert.equal(await failuresOf(key('account', account)), 1);
    assert.equal(await failuresOf(key('address', address)), 1);
    // Without the success this pair would wait a second now.
    assert.deepEqual(await login(th, account, address), allowed);
    assert.deepEqual(await login(th, account, address), allowed);

    // The same success reported again (a retried request) takes nothing below zero.
    const [account2, address2] = [fresh('again@example.com'), fresh('198.51.100.3')];
    assert.deepEqual(await login(th, account2, address2), allowed);
    const decision = await th.begin(account2, address2);
    assert.ok(decision.allowed);
    for (let i = 0; i < 3; i++) await th.succeeded(decision.attempt);
    assert.equal(await failuresOf(key('account', account2)), 0);
    assert.equal(await failuresOf(key('address', address2)), 0);

    // A success with nothing counted is harmless.
    const [account3, address3] = [fresh('new@example.com'), fresh('198.51.100.2')];
    assert.deepEqual(await login(th, account3, address3, 'right'), allowed);
    assert.equal(await failuresOf(pairKey(account3, address3)), undefined);
    assert.equal(await failuresOf(key('account', account3)), 0);
    assert.equal(await failuresOf(key('address', address3)), 0);
  });

  it('a success does not take back a failure it did not count', async () => {
    const th = throttle({
      pair: { freeFailures: 5, maxDelaySeconds: 60 },
      account: { freeFailures: 10, maxDelaySeconds: 60 },
      address: { freeFailures: 10, maxDelaySeconds: 60 },
    });
    const [account, address] = [fresh('mine@example.com'), fresh('198.51.100.20')];
    // Clean at begin: nothing counted up front.
    const decision = await th.begin(account, address);
    assert.ok(decision.allowed);
    // Meanwhile someone else behind the same address gets a password wrong.
    assert.deepEqual(await login(th, fresh('someone@example.com'), address), allowed);
    assert.equal(await failuresOf(key('address', address)), 1);
    await th.succeeded(decision.attempt);
    // That failure is theirs: it stays.
    assert.equal(await failuresOf(key('address', address)), 1);
  });

  it('a known pair (one success) gets in while spread guesses block the account for strangers', async () => {
    const rules = {
      pair: { freeFailures: 2, maxDelaySeconds: 2 },
      account: { freeFailures: 3, maxDelaySeconds: 2 },
      address: LOOSE,
    };
    const th = throttle(rules);
    const [account, home] = [fresh('owner@example.com'), fresh('203.0.113.70')];
    assert.deepEqual(await login(th, account, home, 'right'), allowed);
    // The attacker spreads guesses over many addresses until the account is blocked.
    for (let i = 0; i < 3; i++)
      assert.deepEqual(await login(th, account, fresh('botnet')), allowed);
    assertRefused(await login(th, account, fresh('botnet')), rules.account.maxDelaySeconds);
    // The owner's own address still gets in, twice in a row, the block notwithstanding...
    assert.deepEqual(await login(th, account, home, 'right'), allowed);
    assert.deepEqual(await login(th, account, home, 'right'), allowed);
    // ...while a stranger's address is refused, for at most the account's max.
    const stranger = await login(th, account, fresh('203.0.113.71'), 'right');
    assertRefused(stranger, rules.account.maxDelaySeconds);
    // The mark is shared through the database: another throttle object knows the pair too.
    assert.deepEqual(await login(throttle(rules), account, home, 'right'), allowed);
  });

  it("a known pair is still held back by its own pair counter and by its address's", async () => {
    const th = throttle({
      pair: { freeFailures: 2, maxDelaySeconds: 2 },
      account: LOOSE,
      address: LOOSE,
    });
    const [account, home] = [fresh('forgetful@example.com'), fresh('203.0.113.80')];
    assert.deepEqual(await login(th, account, home, 'right'), allowed);
    assert.deepEqual(await login(th, account, home), allowed);
    assert.deepEqual(await login(th, account, home), allowed);
    assert.deepEqual(await login(th, account, home, 'right'), blocked(1));

    const byAddress = throttle({
      pair: LOOSE,
      account: LOOSE,
      address: { freeFailures: 2, maxDelaySeconds: 2 },
    });
    const [account2, office] = [fresh('clerk@example.com'), fresh('203.0.113.81')];
    assert.deepEqual(await login(byAddress, account2, office, 'right'), allowed);
    // Guesses on other accounts from the same address.
    assert.deepEqual(await login(byAddress, fresh('x@example.com'), office), allowed);
    assert.deepEqual(await login(byAddress, fresh('y@example.com'), office), allowed);
    assert.deepEqual(await login(byAddress, account2, office, 'right'), blocked(1));
  });

  it('starts a counter again once its last failure is older than the reset window', async () => {
    const th = throttle({
      pair: { freeFailures: 2, maxDelaySeconds: 2 },
      account: LOOSE,
      address: LOOSE,
      resetAfterSeconds: 1,
    });
    const [account, address] = [fresh('reset@example.com'), fresh('203.0.113.1')];
    assert.deepEqual(await login(th, account, address), allowed);
    assert.deepEqual(await login(th, account, address), allowed);
    await waitOut(await login(th, account, address));
    await sleep(200);
    // Counting from zero: two more go through (without the reset the second would wait 2 s).
    assert.deepEqual(await login(th, account, address), allowed);
    assert.deepEqual(await login(th, account, address), allowed);
    assert.deepEqual(await login(th, account, address), blocked(1));
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
    await login(throttle({}), fresh('p@example.com'), fresh('192.0.2.99'));
    assert.equal(await failuresOf(stale), undefined);
    assert.equal(await failuresOf(staleBlocked), 9);
    assert.equal(await failuresOf(recent), 1);
  });

  it('prunes a known-pair mark once it has expired, not while it lives', async () => {
    const account = fresh('marked@example.com');
    const [live, expired] = [fresh('203.0.113.90'), fresh('203.0.113.91')];
    const hours = (n: number) => new Date(Date.now() + n * 3_600_000);
    // Both marked long ago (past the reset window); only one still within its 30 days.
    await crud.addAll([
      {
        key: key('known', `${account}\n${live}`),
        failures: 0,
        last_failed_at: hours(-24 * 20),
        blocked_until: hours(24 * 10),
      },
      {
        key: key('known', `${account}\n${expired}`),
        failures: 0,
        last_failed_at: hours(-24 * 31),
        blocked_until: hours(-1),
      },
      // The account blocked by an attack, for an hour.
      {
        key: key('account', account),
        failures: 30,
        last_failed_at: hours(0),
        blocked_until: hours(1),
      },
    ]);
    const th = throttle({});
    // A new throttle prunes on its first attempt (then at most once a minute).
    await login(th, fresh('q@example.com'), fresh('192.0.2.98'));
    assert.equal(await failuresOf(key('known', `${account}\n${live}`)), 0);
    assert.equal(await failuresOf(key('known', `${account}\n${expired}`)), undefined);
    assert.deepEqual(await login(th, account, live, 'right'), allowed);
    assert.equal((await login(th, account, expired, 'right')).allowed, false);
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
    const throttles = (options: ThrottleOptions) =>
      handles().map((h) => new LoginThrottle(h, options));
    /** `n` logins at once, spread over the handles. */
    const burst = (
      ths: LoginThrottle[],
      n: number,
      run: (th: LoginThrottle, i: number) => Promise<Outcome>,
    ) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => run(ths[i % ths.length] as LoginThrottle, i)),
      );

    before(async () => {
      if (kind === 'postgres') second = await openDatabase(t.settings, { role: 'tool' });
    });
    after(async () => {
      await second?.close();
    });

    it('20 parallel right-password logins on a clean pair are all allowed', async () => {
      const ths = throttles({
        pair: { freeFailures: 5, maxDelaySeconds: 60 },
        account: { freeFailures: 3, maxDelaySeconds: 2 },
        address: { freeFailures: 3, maxDelaySeconds: 2 },
      });
      const [account, address] = [fresh('tabs@example.com'), fresh('203.0.113.8')];
      const outcomes = await burst(ths, 20, (th) => login(th, account, address, 'right'));
      assert.deepEqual(outcomes, Array(20).fill(allowed));
      assert.equal(await failuresOf(pairKey(account, address)), undefined);
      assert.equal(await failuresOf(key('account', account)), 0);
      assert.equal(await failuresOf(key('address', address)), 0);
    });

    it('once guessing has started, 20 parallel guesses on one pair with 5 free failures let only the 4 left through', async () => {
      const ths = throttles({
        pair: { freeFailures: 5, maxDelaySeconds: 60 },
        account: LOOSE,
        address: LOOSE,
      });
      const [account, address] = [fresh('burst@example.com'), fresh('203.0.113.9')];
      assert.deepEqual(await login(ths[0] as LoginThrottle, account, address), allowed);
      const started = performance.now();
      const outcomes = await burst(ths, 20, (th) => login(th, account, address));
      const seconds = (performance.now() - started) / 1000;
      const through = outcomes.filter((o) => o.allowed).length;
      // Each one that went through was counted once, up front.
      assert.equal(await failuresOf(pairKey(account, address)), 1 + through);
      if (seconds < 1) {
        // The 5th failure blocks for 1 s: within it, the 4 left and no more.
        assert.equal(through, 4);
        for (const o of outcomes) if (!o.allowed) assert.equal(o.retryAfterSeconds, 1);
      } else {
        // A machine so loaded that the burst outlasted the first block: one more per second.
        assert.ok(through <= 4 + Math.ceil(seconds), `${through} in ${seconds} s`);
      }
    });

    it('every failure of a parallel burst on a clean pair is counted exactly once', async () => {
      const ths = throttles({
        pair: { freeFailures: 5, maxDelaySeconds: 60 },
        account: LOOSE,
        address: LOOSE,
      });
      const [account, address] = [fresh('fresh-burst@example.com'), fresh('203.0.113.10')];
      const outcomes = await burst(ths, 20, (th) => login(th, account, address));
      const through = outcomes.filter((o) => o.allowed).length;
      // Those that began on the clean counter all go through (nothing can tell them from
      // a right password yet); every one of them is counted, once.
      assert.ok(through >= 5, `${through} went through`);
      assert.equal(await failuresOf(pairKey(account, address)), through);
      assert.equal(await failuresOf(key('account', account)), through);
      assert.equal(await failuresOf(key('address', address)), through);
      assert.equal((await login(ths[0] as LoginThrottle, account, address)).allowed, false);
    });

    it('parallel attempts and successes on one account from many addresses never deadlock', async () => {
      const ths = throttles({
        pair: { freeFailures: 50, maxDelaySeconds: 1 },
        account: { freeFailures: 1000, maxDelaySeconds: 1 },
        address: { freeFailures: 1000, maxDelaySeconds: 1 },
      });
      const account = fresh('busy@example.com');
      const addresses = Array.from({ length: 8 }, () => fresh('198.18.0.1'));
      const outcomes = await burst(ths, 40, (th, i) =>
        login(
          th,
          account,
          addresses[i % addresses.length] as string,
          i % 2 === 0 ? 'right' : 'wrong',
        ),
      );
      assert.deepEqual(outcomes, Array(40).fill(allowed));
      // The 20 wrong passwords, each once; the right ones leave no trace.
      assert.equal(await failuresOf(key('account', account)), 20);
    });

    // PGlite in memory belongs to one process: two handles need a server.
    if (kind === 'postgres') {
      it('two database handles (two processes) share the counters', async () => {
        const [one, two] = throttles({
          pair: { freeFailures: 2, maxDelaySeconds: 60 },
          account: LOOSE,
          address: LOOSE,
        }) as [LoginThrottle, LoginThrottle];
        const [account, address] = [fresh('shared@example.com'), fresh('203.0.113.50')];
        assert.deepEqual(await login(one, account, address), allowed);
        assert.deepEqual(await login(two, account, address), allowed);
        const refusal = await login(one, account, address);
        assert.deepEqual(refusal, blocked(1));
        assert.deepEqual(await login(two, account, address), blocked(1));
        await waitOut(refusal);
        assert.deepEqual(await login(two, account, address, 'right'), allowed);
        // The success through the other handle cleared the pair (else 2 s now).
        assert.deepEqual(await login(one, account, address), allowed);
        assert.deepEqual(await login(one, account, address), allowed);
      });
    }
  });
});
