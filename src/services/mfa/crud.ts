/** MfaCRUD: the queries of TOTP factors, recovery codes and pending login challenges. */
import { and, eq, isNotNull, isNull, lt, or, sql } from 'drizzle-orm';
import type { Executor } from '../../backend/database.js';
import { mfaChallenges, mfaFactors, mfaRecoveryCodes } from '../../models/mfa.js';
import { AppCRUD } from '../base.js';

/** Wrong codes a user may give (across all their challenges) before each further one waits. */
export const FREE_CODE_FAILURES = 5;
/** The wait doubles from 1 s per further wrong code up to this. */
const MAX_CODE_DELAY_SECONDS = 900;

export interface Factor {
  sealed: string;
  confirmed: boolean;
  lastStep: number | null;
  /** Seconds until the user may try a code again; 0 when free. */
  blockedSeconds: number;
}

export interface Challenge {
  userId: number;
  scope: string;
  /** Neither expired nor used. */
  live: boolean;
  attempts: number;
}

export class MfaCRUD extends AppCRUD<typeof mfaFactors> {
  /** Every login asks it: built once, a named statement (see UserCRUD's byEmail). */
  private readonly confirmedFactor = this.preparedExists(
    'mfa_factor_confirmed',
    { userId: mfaFactors.user_id },
    (fields) =>
      this.db
        .select(fields)
        .from(mfaFactors)
        .where(
          and(
            eq(mfaFactors.user_id, sql.placeholder('userId')),
            isNotNull(mfaFactors.confirmed_at),
          ),
        ),
  );

  /** Whether the user has a confirmed factor. */
  hasConfirmedFactor(userId: number): Promise<boolean> {
    return this.confirmedFactor({ userId });
  }

  /** The user's factor; locked until `tx` ends when `lock` (one code check at a time). */
  async factor(userId: number, tx?: Executor, lock = false): Promise<Factor | undefined> {
    const query = this.on(tx)
      .select({
        sealed: mfaFactors.secret_sealed,
        confirmed: sql<boolean>`${mfaFactors.confirmed_at} is not null`,
        lastStep: mfaFactors.last_step,
        blockedSeconds: sql<number>`greatest(0, ceil(extract(epoch from
          coalesce(${mfaFactors.blocked_until}, now()) - now())))::int`,
      })
      .from(mfaFactors)
      .where(eq(mfaFactors.user_id, userId));
    const [row] = lock ? await query.for('update') : await query;
    return row;
  }

  /** A new, unconfirmed factor, replacing an unconfirmed one (never a confirmed one). */
  async saveUnconfirmed(userId: number, sealed: string, tx: Executor): Promise<boolean> {
    const rows = await tx
      .insert(mfaFactors)
      .values({ user_id: userId, secret_sealed: sealed })
      .onConflictDoUpdate({
        target: mfaFactors.user_id,
        set: {
          secret_sealed: sealed,
          created_at: sql`now()`,
          last_step: null,
          failures: 0,
          blocked_until: null,
        },
        setWhere: isNull(mfaFactors.confirmed_at),
      })
      .returning({ id: mfaFactors.user_id });
    return rows.length > 0;
  }

  /** A right code: remembered (no replay), the failure count cleared; confirms the factor. */
  async accepted(userId: number, step: number, tx: Executor): Promise<void> {
    await tx
      .update(mfaFactors)
      .set({
        last_step: step,
        failures: 0,
        blocked_until: null,
        confirmed_at: sql`coalesce(${mfaFactors.confirmed_at}, now())`,
      })
      .where(eq(mfaFactors.user_id, userId));
  }

  /** A wrong code: one more failure; past the free ones, the next code waits (database clock). */
  async failed(userId: number, tx: Executor): Promise<void> {
    const next = sql`${mfaFactors.failures} + 1`;
    await tx
      .update(mfaFactors)
      .set({
        failures: sql`${next}`,
        blocked_until: sql`case when ${next} >= ${FREE_CODE_FAILURES}
          then now() + make_interval(secs => least(${MAX_CODE_DELAY_SECONDS},
            power(2, least(30, ${next} - ${FREE_CODE_FAILURES}))))
          else null end`,
      })
      .where(eq(mfaFactors.user_id, userId));
  }

  /** Forgets the user's factor, recovery codes and pending challenges; true if there was one. */
  async remove(userId: number, tx: Executor): Promise<boolean> {
    await tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.user_id, userId));
    await tx.delete(mfaChallenges).where(eq(mfaChallenges.user_id, userId));
    const rows = await tx
      .delete(mfaFactors)
      .where(eq(mfaFactors.user_id, userId))
      .returning({ id: mfaFactors.user_id });
    return rows.length > 0;
  }

  async replaceRecoveryCodes(userId: number, hashes: string[], tx: Executor): Promise<void> {
    await tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.user_id, userId));
    await tx
      .insert(mfaRecoveryCodes)
      .values(hashes.map((code_hash) => ({ user_id: userId, code_hash })));
  }

  /** Spends an unused recovery code; false when it is not one (or was used). */
  async useRecoveryCode(userId: number, hash: string, tx: Executor): Promise<boolean> {
    const rows = await tx
      .update(mfaRecoveryCodes)
      .set({ used_at: sql`now()` })
      .where(
        and(
          eq(mfaRecoveryCodes.user_id, userId),
          eq(mfaRecoveryCodes.code_hash, hash),
          isNull(mfaRecoveryCodes.used_at),
        ),
      )
      .returning({ id: mfaRecoveryCodes.user_id });
    return rows.length > 0;
  }

  async unusedRecoveryCodes(userId: number, tx?: Executor): Promise<number> {
    const [row] = await this.on(tx)
      .select({ n: sql<number>`count(*)::int` })
      .from(mfaRecoveryCodes)
      .where(and(eq(mfaRecoveryCodes.user_id, userId), isNull(mfaRecoveryCodes.used_at)));
    return row?.n ?? 0;
  }

  /** A new challenge; the user's dead ones go first. */
  async createChallenge(
    challenge: { hash: string; userId: number; scope: string; lifetimeSeconds: number },
    tx?: Executor,
  ): Promise<void> {
    const db = this.on(tx);
    await db
      .delete(mfaChallenges)
      .where(
        and(
          eq(mfaChallenges.user_id, challenge.userId),
          or(lt(mfaChallenges.expires_at, sql`now()`), sql`${mfaChallenges.used_at} is not null`),
        ),
      );
    await db.insert(mfaChallenges).values({
      token_hash: challenge.hash,
      user_id: challenge.userId,
      scope: challenge.scope,
      expires_at: sql`now() + make_interval(secs => ${challenge.lifetimeSeconds})`,
    });
  }

  /** The challenge of an mfa_token, locked until `tx` ends. */
  async challenge(hash: string, tx: Executor): Promise<Challenge | undefined> {
    const [row] = await tx
      .select({
        userId: mfaChallenges.user_id,
        scope: mfaChallenges.scope,
        live: sql<boolean>`${mfaChallenges.used_at} is null and ${mfaChallenges.expires_at} > now()`,
        attempts: mfaChallenges.attempts,
      })
      .from(mfaChallenges)
      .where(eq(mfaChallenges.token_hash, hash))
      .for('update');
    return row;
  }

  async challengeAttempted(hash: string, spent: boolean, tx: Executor): Promise<void> {
    await tx
      .update(mfaChallenges)
      .set({
        attempts: sql`${mfaChallenges.attempts} + 1`,
        ...(spent ? { used_at: sql`now()` } : {}),
      })
      .where(eq(mfaChallenges.token_hash, hash));
  }
}
