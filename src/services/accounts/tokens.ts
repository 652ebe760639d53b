/** Single-use account tokens: random strings mailed to the user, stored only as their SHA-256. */
import { createHash, randomBytes } from 'node:crypto';
import { and, eq, gt, inArray, isNull, lt, sql } from 'drizzle-orm';
import type { Executor } from '../../backend/database.js';
import { AppError } from '../../exc.js';
import { accountTokens } from '../../models/account_tokens.js';
import { AppCRUD } from '../base.js';

export type TokenPurpose = 'verify_email' | 'change_email' | 'password_reset' | 'invitation';
export type AccountToken = typeof accountTokens.$inferSelect;

/** A token that is unknown, expired or used: one answer for all three, so none is told apart. */
export class InvalidTokenError extends AppError {
  constructor(what = 'token') {
    super(400, `The ${what} is invalid, expired or already used`);
  }
}

/** 256 random bits, base64url: as good as a code to type and as a link parameter. */
export function newAccountToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashAccountToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Tokens kept after their expiry, so a late click is still told "expired" rather than lost. */
const KEEP_EXPIRED_DAYS = 1;

export class AccountTokenCRUD extends AppCRUD<typeof accountTokens> {
  /** A new token for `purpose`; only its hash is stored. */
  async issue(
    values: {
      purpose: TokenPurpose;
      userId: number | null;
      email: string;
      lifetimeSeconds: number;
    },
    tx: Executor,
  ): Promise<{ token: string; expiresAt: Date }> {
    const token = newAccountToken();
    await tx
      .delete(accountTokens)
      .where(
        lt(accountTokens.expires_at, sql`now() - make_interval(days => ${KEEP_EXPIRED_DAYS})`),
      );
    const [row] = await tx
      .insert(accountTokens)
      .values({
        token_hash: hashAccountToken(token),
        purpose: values.purpose,
        user_id: values.userId,
        email: values.email,
        expires_at: sql`now() + make_interval(secs => ${values.lifetimeSeconds})`,
      })
      .returning({ expiresAt: accountTokens.expires_at });
    if (row === undefined) throw new Error('token insert returned no row');
    return { token, expiresAt: row.expiresAt };
  }

  private live(purposes: readonly TokenPurpose[], token: string) {
    return and(
      eq(accountTokens.token_hash, hashAccountToken(token)),
      inArray(accountTokens.purpose, [...purposes]),
      isNull(accountTokens.used_at),
      gt(accountTokens.expires_at, sql`now()`),
    );
  }

  /** The token while it is unused and unexpired, without spending it. */
  find(purposes: readonly TokenPurpose[], token: string, tx?: Executor) {
    return this.getOne(this.live(purposes, token) ?? sql`false`, tx);
  }

  /** Spends the token: of two uses at once, one gets the row and the other nothing. */
  async consume(
    purposes: readonly TokenPurpose[],
    token: string,
    tx: Executor,
  ): Promise<AccountToken | undefined> {
    const [row] = await tx
      .update(accountTokens)
      .set({ used_at: sql`now()` })
      .where(this.live(purposes, token))
      .returning();
    return row;
  }

  /** Spends every open token of a user for `purpose` (a reset done, an address changed). */
  async spendAll(purpose: TokenPurpose, userId: number, tx: Executor): Promise<void> {
    await tx
      .update(accountTokens)
      .set({ used_at: sql`now()` })
      .where(
        and(
          eq(accountTokens.user_id, userId),
          eq(accountTokens.purpose, purpose),
          isNull(accountTokens.used_at),
        ),
      );
  }
}
