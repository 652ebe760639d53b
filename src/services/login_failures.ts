// The SQL of the login throttle's counters (services/throttle.ts holds the rules).
import { and, eq, inArray, sql } from 'drizzle-orm';
import { queryRows, writesTogether, type Executor } from '../backend/database.js';
import { loginFailures } from '../models/login_failures.js';
import { AppCRUD } from './base.js';

/** One counter as `begin` found it, after its row was locked. */
export interface FailureCounter {
  key: string;
  /** Failures within the reset window (0 when the last one is older). */
  failures: number;
  /** Attempts whose password is being checked (0 once their lease has passed). */
  pending: number;
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
        pending: sql<number>`(case when ${f.pending_until} > clock_timestamp() then ${f.pending} else 0 end)::integer`,
        waitSeconds: sql<number>`greatest(0, ceil(extract(epoch from ${f.blocked_until} - clock_timestamp())))::integer`,
      });
  }

  /**
   * Writes new counts on counters this transaction has locked; a delay blocks from now. With
   * `release`, the same statement also ends one attempt in flight on each, as `release()` does.
   */
  async recordFailures(
    counts: readonly FailureCount[],
    tx: Executor,
    { release = false }: { release?: boolean } = {},
  ): Promise<void> {
    if (counts.length === 0) return;
    const rows = sql.join(
      counts.map((c) => sql`(${c.key}::text, ${c.failures}::integer, ${c.delaySeconds}::integer)`),
      sql`, `,
    );
    const pending = release ? sql`greatest(f.pending - 1, 0)` : sql`f.pending`;
    await tx.execute(sql`
      update ${loginFailures} as f set
        failures = v.failures,
        last_failed_at = clock_timestamp(),
        blocked_until = case when v.delay > 0
          then greatest(f.blocked_until, clock_timestamp() + make_interval(secs => v.delay))
          else f.blocked_until end,
        pending = ${pending}
      from (values ${rows}) as v(key, failures, delay)
      where f.key = v.key`);
  }

  /** One more attempt in flight on each of these locked counters, held for `leaseSeconds`. */
  async reserve(keys: readonly string[], leaseSeconds: number, tx: Executor): Promise<void> {
    if (keys.length === 0) return;
    const f = loginFailures;
    await tx
      .update(f)
      .set({
        pending: sql`(case when ${f.pending_until} > clock_timestamp() then ${f.pending} else 0 end) + 1`,
        pending_until: sql`clock_timestamp() + make_interval(secs => ${leaseSeconds})`,
      })
      .where(inArray(f.key, [...keys]));
  }

  /**
   * Locks these counters in key order, the order `lockCounters` takes them in. An UPDATE of
   * several rows locks them in the order it finds them, which can be another: two transactions
   * would then each hold a row the other waits for (a deadlock, seen under a login burst).
   */
  private async lockInKeyOrder(keys: readonly string[], tx: Executor): Promise<void> {
    const f = loginFailures;
    await tx
      .select({ key: f.key })
      .from(f)
      .where(inArray(f.key, [...keys]))
      .orderBy(f.key)
      .for('update');
  }

  /** One attempt fewer in flight on each of these counters, never below zero. */
  async release(keys: readonly string[], tx: Executor): Promise<void> {
    if (keys.length === 0) return;
    await this.lockInKeyOrder(keys, tx);
    const f = loginFailures;
    await tx
      .update(f)
      .set({ pending: sql`greatest(${f.pending} - 1, 0)` })
      .where(inArray(f.key, [...keys]));
  }

  /**
   * A right password: the pair's counter starts clean, the account's and the address's lose the
   * failure counted up front (`undo`), and this attempt's reservations end (`release`). One
   * statement locks the rows in key order (the CTE: sorted, then locked row by row) and updates
   * them; `forgetPair` follows.
   */
  async settleSuccess(
    pairKey: string,
    undo: readonly string[],
    release: readonly string[],
    tx?: Executor,
  ): Promise<void> {
    const f = loginFailures;
    const keys = [...new Set([pairKey, ...undo, ...release])];
    await this.on(tx).execute(sql`
      with locked as materialized (
        select ${f.key} from ${f} where ${inArray(f.key, keys)} order by ${f.key} for update)
      update ${f} set
        pending = case when ${inArray(f.key, [...release])}
          then greatest(${f.pending} - 1, 0) else ${f.pending} end,
        failures = case when ${f.key} = ${pairKey} then 0
          when ${inArray(f.key, [...undo])} then greatest(${f.failures} - 1, 0)
          else ${f.failures} end,
        blocked_until = case when ${f.key} = ${pairKey}
          then clock_timestamp() else ${f.blocked_until} end
      from locked where ${f.key} = locked.key`);
  }

  /**
   * After `settleSuccess`, in one statement: the pair's row goes unless other attempts are in
   * flight on it (checked on its latest version, so one that reserved meanwhile keeps it), and the
   * pair is marked known until `days` from now. The mark lives in the same table under its own
   * key kind: `blocked_until` is when it expires (prune keeps rows until then).
   */
  async forgetPair(pairKey: string, knownKey: string, days: number, tx?: Executor): Promise<void> {
    const f = loginFailures;
    const until = sql`now() + make_interval(days => ${days})`;
    const deletion = this.on(tx)
      .delete(f)
      .where(
        and(eq(f.key, pairKey), sql`(${f.pending} = 0 or ${f.pending_until} <= clock_timestamp())`),
      );
    const knownMark = this.on(tx)
      .insert(f)
      .values({ key: knownKey, failures: 0, last_failed_at: sql`now()`, blocked_until: until })
      .onConflictDoUpdate({ target: f.key, set: { blocked_until: until } });
    await this.on(tx).execute(writesTogether([deletion, knownMark]));
  }

  /**
   * Every login asks it first, so it is built once, a named statement: no query building while a
   * server's login code is not yet optimised, no parse and plan per login.
   */
  private readonly known = this.preparedExists(
    'login_failures_known',
    { key: loginFailures.key },
    (fields) =>
      this.db
        .select(fields)
        .from(loginFailures)
        .where(
          and(
            eq(loginFailures.key, sql.placeholder('key')),
            sql`${loginFailures.blocked_until} > now()`,
          ),
        ),
  );

  /** Whether the account+address pair's known mark (see `forgetPair`) has not yet expired. */
  isKnown(knownKey: string): Promise<boolean> {
    return this.known({ key: knownKey });
  }

  /**
   * Deletes up to `limit` counters whose last failure is older than the reset window and that
   * are neither blocked nor checking a password: they would count from zero anyway. SKIP LOCKED:
   * never waits for a login, and two processes pruning at once take different rows.
   */
  async prune(resetAfterSeconds: number, limit: number, tx?: Executor): Promise<number> {
    const f = loginFailures;
    const rows = await queryRows<{ key: string }>(
      this.on(tx),
      sql`delete from ${f} where ${f.key} in (
            select ${f.key} from ${f}
            where ${f.last_failed_at} < now() - make_interval(secs => ${resetAfterSeconds}::double precision)
              and ${f.blocked_until} <= now()
              and (${f.pending} = 0 or ${f.pending_until} <= now())
            limit ${limit}
            for update skip locked)
          returning ${f.key}`,
    );
    return rows.length;
  }
}
