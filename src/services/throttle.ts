import { createHash } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { queryRows, type Executor } from '../backend/database.js';
import { loginFailures } from '../models/login_failures.js';
import { AppCRUD, AppService, type ServiceContext } from './base.js';

/**
 * The brute-force throttle of POST /token. Three counters per attempt, all in PostgreSQL so every
 * process on the database shares them, all on the database clock so every machine agrees:
 *
 * - the pair (account + client address): a few free failures, then an exponential delay;
 * - the account, from any address: more free failures and a short cap on the delay, so guesses
 *   spread over many addresses are slowed without ever locking the real user out;
 * - the address, for any account: many free failures (offices behind one NAT), then a delay.
 *
 * A counter that already holds a failure counts the next attempt before the password is checked
 * (`begin`), undone when it was right (`succeeded`), so once guessing has started a burst of
 * parallel guesses cannot slip past the check. A clean counter counts only a real failure
 * (`failed`): a client logging in many times at once with the right password is never refused.
 *
 * A pair that logged in successfully is remembered for KNOWN_PAIR_DAYS and is exempt from the
 * account's block: guesses spread over many addresses slow the account for strangers, but the
 * real user's own browser or office still gets in, however the attacker times the guesses.
 */

export interface ThrottleRule {
  /** Attempts that go through back to back; after that many failures each attempt waits. */
  freeFailures: number;
  /** The wait doubles from 1 s per further failure up to this. */
  maxDelaySeconds: number;
}

export interface ThrottleOptions {
  pair?: ThrottleRule;
  account?: ThrottleRule;
  address?: ThrottleRule;
  /** A counter starts again from zero when its last failure is older than this. */
  resetAfterSeconds?: number;
}

/** The counters of one attempt, and which of them `begin` already counted. */
export interface LoginAttempt {
  readonly known: string;
  readonly pair: string;
  readonly account: string;
  readonly address: string;
  readonly counted: readonly string[];
}

export type ThrottleDecision =
  { allowed: true; attempt: LoginAttempt } | { allowed: false; retryAfterSeconds: number };

export const DEFAULT_THROTTLE: Required<ThrottleOptions> = {
  pair: { freeFailures: 5, maxDelaySeconds: 900 },
  account: { freeFailures: 20, maxDelaySeconds: 60 },
  address: { freeFailures: 100, maxDelaySeconds: 900 },
  resetAfterSeconds: 3600,
};

/** How long a successful account+address pair stays exempt from the account's block. */
const KNOWN_PAIR_DAYS = 30;

/** How often one process deletes expired counters, and how many at most each time. */
const PRUNE_INTERVAL_MS = 60_000;
const PRUNE_BATCH = 1000;
/** 2^30 s is far past any cap: keeps the power finite however many failures pile up. */
const MAX_EXPONENT = 30;

/** One counter as `begin` found it, after its row was locked. */
export interface FailureCounter {
  key: string;
  /** Failures within the reset window (0 when the last one is older). */
  failures: number;
  /** Whole seconds until the counter's block ends, rounded up; 0 when not blocked. */
  waitSeconds: number;
}

/** What `begin` writes back for one counter. */
export interface FailureCount {
  key: string;
  failures: number;
  /** Blocks the counter for this many seconds from now; 0 leaves it unblocked. */
  delaySeconds: number;
}

export class LoginFailureCRUD extends AppCRUD<typeof loginFailures> {
  /**
   * Locks the counters of these keys until the transaction ends, creating missing ones at zero,
   * and returns them as of their latest committed version. INSERT .. ON CONFLICT DO UPDATE locks
   * each row it meets (waiting for a transaction that holds it, and then reading that
   * transaction's result, not this statement's snapshot). Rows are taken in key order, the order
   * every throttle transaction uses, so two of them never wait on each other in a cycle.
   * Times are clock_timestamp(), the database's clock when the row is in hand: now() is when the
   * transaction began, before any wait for the lock, and would make waits look longer.
   */
  async lockCounters(
    keys: readonly string[],
    resetAfterSeconds: number,
    tx: Executor,
  ): Promise<FailureCounter[]> {
    const sorted = [...keys].sort();
    const f = loginFailures;
    return tx
      .insert(f)
      .values(
        sorted.map((key) => ({
          key,
          failures: 0,
          last_failed_at: sql`clock_timestamp()`,
          blocked_until: sql`clock_timestamp()`,
        })),
      )
      .onConflictDoUpdate({ target: f.key, set: { key: sql`excluded.key` } })
      .returning({
        key: f.key,
        failures: sql<number>`(case when ${f.last_failed_at} < clock_timestamp() - make_interval(secs => ${resetAfterSeconds}::double precision) then 0 else ${f.failures} end)::integer`,
        waitSeconds: sql<number>`greatest(0, ceil(extract(epoch from ${f.blocked_until} - clock_timestamp())))::integer`,
      });
  }

  /** Writes new counts on counters this transaction has locked; a delay blocks from now. */
  async recordFailures(counts: readonly FailureCount[], tx: Executor): Promise<void> {
    if (counts.length === 0) return;
    const rows = sql.join(
      counts.map((c) => sql`(${c.key}::text, ${c.failures}::integer, ${c.delaySeconds}::integer)`),
      sql`, `,
    );
    await tx.execute(sql`
      update ${loginFailures} as f set
        failures = v.failures,
        last_failed_at = clock_timestamp(),
        blocked_until = case when v.delay > 0
          then greatest(f.blocked_until, clock_timestamp() + make_interval(secs => v.delay))
          else f.blocked_until end
      from (values ${rows}) as v(key, failures, delay)
      where f.key = v.key`);
  }

  /**
   * A right password: the pair's counter goes, and the account's and the address's lose the
   * failure `begin` counted up front. Their blocks stay (see LoginThrottle.succeeded). The rows
   * are locked in key order first, as `lockCounters` does, so this never deadlocks with it.
   */
  async undoFailure(pairKey: string, otherKeys: readonly string[], tx: Executor): Promise<void> {
    const f = loginFailures;
    await tx
      .select({ key: f.key })
      .from(f)
      .where(inArray(f.key, [pairKey, ...otherKeys]))
      .orderBy(f.key)
      .for('update');
    await tx.delete(f).where(eq(f.key, pairKey));
    if (otherKeys.length === 0) return;
    await tx
      .update(f)
      .set({ failures: sql`greatest(${f.failures} - 1, 0)` })
      .where(inArray(f.key, [...otherKeys]));
  }

  /**
   * Marks a pair as known until `days` from now. The row lives in the same table under its own
   * key kind: `blocked_until` is when the mark expires (prune keeps rows until then).
   */
  async markKnown(key: string, days: number, tx?: Executor): Promise<void> {
    const until = sql`now() + make_interval(days => ${days})`;
    await this.on(tx)
      .insert(loginFailures)
      .values({ key, failures: 0, last_failed_at: sql`now()`, blocked_until: until })
      .onConflictDoUpdate({ target: loginFailures.key, set: { blocked_until: until } });
  }

  async isKnown(key: string, tx?: Executor): Promise<boolean> {
    const rows = await this.on(tx)
      .select({ key: loginFailures.key })
      .from(loginFailures)
      .where(and(eq(loginFailures.key, key), sql`${loginFailures.blocked_until} > now()`));
    return rows.length > 0;
  }

  /**
   * Deletes up to `limit` counters whose last failure is older than the reset window and that
   * are not blocked: they would count from zero anyway. SKIP LOCKED: never waits for a login, and
   * two processes pruning at once take different rows. Returns how many went.
   */
  async prune(resetAfterSeconds: number, limit: number, tx?: Executor): Promise<number> {
    const f = loginFailures;
    const rows = await queryRows<{ key: string }>(
      this.on(tx),
      sql`delete from ${f} where ${f.key} in (
            select ${f.key} from ${f}
            where ${f.last_failed_at} < now() - make_interval(secs => ${resetAfterSeconds}::double precision)
              and ${f.blocked_until} <= now()
            limit ${limit}
            for update skip locked)
          returning ${f.key}`,
    );
    return rows.length;
  }
}

function counterKey(kind: 'pair' | 'account' | 'address' | 'known', value: string): string {
  return createHash('sha256').update(`${kind}:${value}`).digest('hex');
}

function checkRule(name: string, rule: ThrottleRule): ThrottleRule {
  if (!Number.isInteger(rule.freeFailures) || rule.freeFailures < 1) {
    throw new RangeError(`throttle ${name}.freeFailures must be an integer >= 1`);
  }
  if (!Number.isInteger(rule.maxDelaySeconds) || rule.maxDelaySeconds < 1) {
    throw new RangeError(`throttle ${name}.maxDelaySeconds must be an integer >= 1`);
  }
  return rule;
}

/** After `failures` failures, how long the next attempt waits: none while free, then 1, 2, 4 .. max. */
export function delayAfter(rule: ThrottleRule, failures: number): number {
  if (failures < rule.freeFailures) return 0;
  const exponent = Math.min(failures - rule.freeFailures, MAX_EXPONENT);
  return Math.min(rule.maxDelaySeconds, 2 ** exponent);
}

export class LoginThrottle extends AppService {
  private readonly crud: LoginFailureCRUD;
  private readonly rules: { pair: ThrottleRule; account: ThrottleRule; address: ThrottleRule };
  private readonly resetAfterSeconds: number;
  /** Process clock, only to space out this process's pruning. */
  private lastPruneAt = Number.NEGATIVE_INFINITY;

  constructor(context: ServiceContext, options: ThrottleOptions = {}) {
    super(context);
    this.crud = new LoginFailureCRUD(context, loginFailures);
    this.rules = {
      pair: checkRule('pair', options.pair ?? DEFAULT_THROTTLE.pair),
      account: checkRule('account', options.account ?? DEFAULT_THROTTLE.account),
      address: checkRule('address', options.address ?? DEFAULT_THROTTLE.address),
    };
    this.resetAfterSeconds = options.resetAfterSeconds ?? DEFAULT_THROTTLE.resetAfterSeconds;
    if (!(this.resetAfterSeconds > 0)) {
      throw new RangeError('throttle resetAfterSeconds must be > 0');
    }
  }

  private keys(account: string, address: string) {
    const pair = `${account}\n${address}`;
    return {
      pair: counterKey('pair', pair),
      account: counterKey('account', account),
      address: counterKey('address', address),
      known: counterKey('known', pair),
    };
  }

  /**
   * Before checking a password: refused while one of the three counters is blocked (nothing is
   * counted then; a known pair ignores the account's block), otherwise allowed, and counted
   * already on every counter that holds failures. `account` is the normalised (trimmed,
   * lowercased) username as given, whether or not such a user exists.
   */
  async begin(account: string, address: string): Promise<ThrottleDecision> {
    const keys = this.keys(account, address);
    const ruleOf = this.ruleOf(keys);
    const known = await this.crud.isKnown(keys.known);
    const decision = await this.transaction(async (tx): Promise<ThrottleDecision> => {
      const counters = await this.crud.lockCounters([...ruleOf.keys()], this.resetAfterSeconds, tx);
      const binding = counters.filter((c) => !(known && c.key === keys.account));
      const wait = Math.max(0, ...binding.map((c) => c.waitSeconds));
      if (wait > 0) return { allowed: false, retryAfterSeconds: Math.max(1, wait) };
      const suspicious = counters.filter((c) => c.failures > 0);
      await this.crud.recordFailures(this.counts(suspicious, ruleOf), tx);
      const counted = suspicious.map((c) => c.key);
      return { allowed: true, attempt: { ...keys, counted } };
    });
    await this.pruneNowAndThen();
    return decision;
  }

  /** The password was wrong (or the user unknown): count it where `begin` did not. */
  async failed(attempt: LoginAttempt): Promise<void> {
    const keys = [attempt.pair, attempt.account, attempt.address].filter(
      (key) => !attempt.counted.includes(key),
    );
    if (keys.length === 0) return;
    const ruleOf = this.ruleOf(attempt);
    await this.transaction(async (tx) => {
      const counters = await this.crud.lockCounters(keys, this.resetAfterSeconds, tx);
      await this.crud.recordFailures(this.counts(counters, ruleOf), tx);
    });
  }

  /**
   * The password was right: the pair starts clean and is known from now on, and the account
   * and address counters lose the failure `begin` counted. A block that counting set on the
   * account or address stays: undoing it could lift a block another attempt earned meanwhile,
   * it is bounded by the rule's max delay, and it holds back other clients, not this one.
   */
  async succeeded(attempt: LoginAttempt): Promise<void> {
    const undo = [attempt.account, attempt.address].filter((key) => attempt.counted.includes(key));
    await this.transaction(async (tx) => {
      await this.crud.undoFailure(attempt.pair, undo, tx);
      await this.crud.markKnown(attempt.known, KNOWN_PAIR_DAYS, tx);
    });
  }

  private ruleOf(keys: { pair: string; account: string; address: string }) {
    return new Map<string, ThrottleRule>([
      [keys.pair, this.rules.pair],
      [keys.account, this.rules.account],
      [keys.address, this.rules.address],
    ]);
  }

  /** One more failure on each counter, with the delay its rule sets for that many. */
  private counts(counters: readonly FailureCounter[], ruleOf: Map<string, ThrottleRule>) {
    return counters.map((c) => {
      const rule = ruleOf.get(c.key);
      if (rule === undefined) throw new Error('throttle counter for an unknown key');
      const failures = c.failures + 1;
      return { key: c.key, failures, delaySeconds: delayAfter(rule, failures) };
    });
  }

  /** At most once a minute per process, a bounded delete of expired counters; never fails a login. */
  private async pruneNowAndThen(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPruneAt < PRUNE_INTERVAL_MS) return;
    this.lastPruneAt = now;
    try {
      await this.crud.prune(this.resetAfterSeconds, PRUNE_BATCH);
    } catch {
      // The next prune retries; the counters are right without it, only the table is larger.
    }
  }
}
