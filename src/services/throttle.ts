// The brute-force throttle of password checks: counters shared through the database, taken before hashing.
import { createHash } from 'node:crypto';
import AsyncLock from 'async-lock';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Executor } from '../backend/database.js';
import { InFlight } from '../backend/in_flight.js';
import { loginFailures } from '../models/login_failures.js';
import { AppService, type ServiceContext } from './base.js';
import { LoginFailureCRUD, type FailureCounter } from './login_failures.js';

export { LoginFailureCRUD };

/**
 * The brute-force throttle of POST /token. Three counters per attempt, all in PostgreSQL so every
 * process on the database shares them, all on the database clock so every machine agrees:
 *
 * - the pair (account + client address): a few free failures, then an exponential delay;
 * - the account, from any address: more free failures and a short cap on the delay, so guesses
 *   spread over many addresses are slowed without ever locking the real user out;
 * - the address, for any account: many free failures (offices behind one NAT), then a delay.
 *
 * Every attempt takes its place on each counter before the password is checked (`begin`), in one
 * transaction holding the counters' rows: a counter that holds failures counts it as one up front
 * (undone when the password was right), a clean counter reserves it (`pending`, turned into a
 * failure when it was wrong). A counter lets an attempt in only while its failures plus the
 * attempts in flight stay under its free failures (or, once blocked and the block has passed, one
 * at a time), so however many guesses arrive at once, across processes, at most that many
 * passwords are checked. An attempt that finds the counter full of attempts in flight waits for
 * them (polling, bounded) rather than being refused: a client logging in many times at once with
 * the right password is never refused, since each success frees its place.
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

/** The counters of one attempt: which counted it up front, which hold a reservation for it. */
export interface LoginAttempt {
  readonly known: string;
  readonly pair: string;
  readonly account: string;
  readonly address: string;
  readonly counted: readonly string[];
  readonly reserved: readonly string[];
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
/** A reservation outlives any password check; it only ends early for a process that died mid-check. */
const LEASE_SECONDS = 60;
/** How long an attempt waits for the attempts in flight before it is told to retry, and how often it looks. */
const MAX_WAIT_MS = 5000;
const FIRST_PAUSE_MS = 20;
const MAX_PAUSE_MS = 200;

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

/** What one look at the counters decided: `busy` means wait for the attempts in flight. */
type Step = ThrottleDecision | { allowed: 'busy' };

export class LoginThrottle extends AppService {
  private readonly crud: LoginFailureCRUD;
  private readonly rules: { pair: ThrottleRule; account: ThrottleRule; address: ThrottleRule };
  private readonly resetAfterSeconds: number;
  /** Process clock, only to space out this process's pruning. */
  private lastPruneAt = Number.NEGATIVE_INFINITY;
  /** Attempts from `begin` to their verdict's write: a stopping server lets them finish. */
  private readonly attempts = new InFlight();
  /** This process's queue for each counter's rows (`inTurn`). */
  private readonly turns = new AsyncLock({ maxPending: Infinity });

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
   * counted then; a known pair ignores the account's block), otherwise the attempt takes its place
   * on every counter, waiting while a counter is full of attempts in flight. `account` is the
   * normalised (trimmed, lowercased) username as given, whether or not such a user exists.
   */
  begin(account: string, address: string): Promise<ThrottleDecision> {
    return this.attempts.track(this.takePlaces(account, address));
  }

  private async takePlaces(account: string, address: string): Promise<ThrottleDecision> {
    const keys = this.keys(account, address);
    const known = await this.crud.isKnown(keys.known);
    const deadline = performance.now() + MAX_WAIT_MS;
    let pause = FIRST_PAUSE_MS;
    for (;;) {
      const step = await this.inTurn([keys.pair, keys.account, keys.address], () =>
        this.transaction((tx) => this.take(keys, known, tx)),
      );
      if (step.allowed !== 'busy') {
        await this.pruneNowAndThen();
        return step;
      }
      // Still full when the wait is over: the attempts in flight are slow, so come back later.
      if (performance.now() + pause > deadline) return { allowed: false, retryAfterSeconds: 1 };
      // Jittered, so a burst's waiters do not all look again in the same instant.
      await sleep(pause * (0.5 + Math.random()));
      pause = Math.min(pause * 2, MAX_PAUSE_MS);
    }
  }

  /** One look at the counters, all of them locked: refuse, wait, or take the attempt's places. */
  private async take(
    keys: ReturnType<LoginThrottle['keys']>,
    known: boolean,
    tx: Executor,
  ): Promise<Step> {
    const ruleOf = this.ruleOf(keys);
    const counters = await this.crud.lockCounters([...ruleOf.keys()], this.resetAfterSeconds, tx);
    const binding = counters.filter((c) => !(known && c.key === keys.account));
    const wait = Math.max(0, ...binding.map((c) => c.waitSeconds));
    if (wait > 0) return { allowed: false, retryAfterSeconds: Math.max(1, wait) };
    const full = binding.some((c) => {
      const { freeFailures } = ruleOf.get(c.key) ?? this.rules.pair;
      // Past its free failures a counter whose block has passed lets one attempt through.
      return c.failures >= freeFailures ? c.pending > 0 : c.failures + c.pending >= freeFailures;
    });
    if (full) return { allowed: 'busy' };
    const suspicious = counters.filter((c) => c.failures > 0);
    const clean = counters.filter((c) => c.failures === 0).map((c) => c.key);
    await this.crud.recordFailures(this.counts(suspicious, ruleOf), tx);
    await this.crud.reserve(clean, LEASE_SECONDS, tx);
    return {
      allowed: true,
      attempt: { ...keys, counted: suspicious.map((c) => c.key), reserved: clean },
    };
  }

  /**
   * Runs the password check of an allowed attempt and reports its verdict: `failed` when `ok` is
   * false, `succeeded` when true, and when the check throws, the attempt gives its places back.
   */
  settle<T extends { ok: boolean }>(attempt: LoginAttempt, check: () => Promise<T>): Promise<T> {
    return this.attempts.track(this.checkAndCount(attempt, check));
  }

  /**
   * Resolves once every attempt has written its verdict, or after `withinMs`. A server stops
   * through this before it closes hashing and the pool: an attempt cut off there would keep its
   * reservations until their lease ends, holding back the next logins of that account.
   */
  settled(withinMs: number): Promise<void> {
    return this.attempts.settled(withinMs);
  }

  private async checkAndCount<T extends { ok: boolean }>(
    attempt: LoginAttempt,
    check: () => Promise<T>,
  ): Promise<T> {
    let verdict: T;
    try {
      verdict = await check();
    } catch (error) {
      await this.abandon(attempt);
      throw error;
    }
    await (verdict.ok ? this.succeeded(attempt) : this.failed(attempt));
    return verdict;
  }

  /** The password was wrong (or the user unknown): each reservation becomes a failure. */
  async failed(attempt: LoginAttempt): Promise<void> {
    if (attempt.reserved.length === 0) return;
    const ruleOf = this.ruleOf(attempt);
    await this.verdictInTurn(attempt.reserved, () =>
      this.transaction(async (tx) => {
        // lockCounters locks exactly the reserved keys: the failures' update also releases them.
        const counters = await this.crud.lockCounters(attempt.reserved, this.resetAfterSeconds, tx);
        await this.crud.recordFailures(this.counts(counters, ruleOf), tx, { release: true });
      }),
    );
  }

  /**
   * The password was right: the pair starts clean and is known from now on, the account and
   * address counters lose the failure `begin` counted, and the reservations end. A block that
   * counting set on the account or address stays: undoing it could lift a block another attempt
   * earned meanwhile, it is bounded by the rule's max delay, and it holds back other clients.
   */
  async succeeded(attempt: LoginAttempt): Promise<void> {
    const undo = [attempt.account, attempt.address].filter((key) => attempt.counted.includes(key));
    // Two statements and no transaction around them: the second needs no lock held from the first.
    await this.verdictInTurn([attempt.pair, ...undo, ...attempt.reserved], async () => {
      await this.crud.settleSuccess(attempt.pair, undo, attempt.reserved);
      await this.crud.forgetPair(attempt.pair, attempt.known, KNOWN_PAIR_DAYS);
    });
  }

  /** The check never reached a verdict (the database or the hasher failed): no failure to count. */
  async abandon(attempt: LoginAttempt): Promise<void> {
    if (attempt.reserved.length === 0) return;
    await this.verdictInTurn(attempt.reserved, () =>
      this.transaction((tx) => this.crud.release(attempt.reserved, tx)),
    );
  }

  /**
   * Runs `work`, which locks these counters' rows, once no other work of this process on any of
   * them runs. Attempts on the same counters would only queue on the rows' locks, each holding a
   * pooled connection meanwhile: a burst on one account or from one address could take every
   * connection and leave the other requests 503s. Here they queue holding nothing. Keys are taken
   * in one order, so two never wait on each other.
   */
  private inTurn<T>(keys: readonly string[], work: () => Promise<T>, first = false): Promise<T> {
    return this.turns.acquire([...new Set(keys)].sort(), work, { skipQueue: first });
  }

  /** A verdict goes before the attempts queued: it frees the places they wait for. */
  private verdictInTurn(keys: readonly string[], work: () => Promise<void>): Promise<void> {
    return this.inTurn(keys, work, true);
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
