/** Drizzle tables of two-factor authentication: TOTP factors, recovery codes, login challenges. */
import { bigint, index, integer, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';
import { users } from './users.js';

/**
 * A user's TOTP factor (RFC 6238). The shared secret is stored encrypted (AES-256-GCM, a key
 * derived from the token key). Unconfirmed until the first code; `last_step` is the time step of
 * the last accepted code, so a code is accepted once; `failures` and `blocked_until` limit
 * guessing across every mfa_token of the user.
 */
export const mfaFactors = myapiSchema.table('mfa_factors', {
  user_id: integer('user_id')
    .primaryKey()
    .references(() => users.user_id, { onDelete: 'cascade' }),
  secret_sealed: text('secret_sealed').notNull(),
  created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  confirmed_at: timestamp('confirmed_at', { withTimezone: true }),
  last_step: bigint('last_step', { mode: 'number' }),
  failures: integer('failures').notNull().default(0),
  blocked_until: timestamp('blocked_until', { withTimezone: true }),
});

/** Single-use recovery codes, stored only as SHA-256 digests. */
export const mfaRecoveryCodes = myapiSchema.table(
  'mfa_recovery_codes',
  {
    user_id: integer('user_id')
      .notNull()
      .references(() => users.user_id, { onDelete: 'cascade' }),
    code_hash: text('code_hash').notNull(),
    used_at: timestamp('used_at', { withTimezone: true }),
  },
  (table) => [primaryKey({ columns: [table.user_id, table.code_hash] })],
);

/**
 * The pending second step of a login: the password was right, a code is due. The client holds
 * the mfa_token; only its SHA-256 is stored. Short-lived, single use, a few attempts.
 */
export const mfaChallenges = myapiSchema.table(
  'mfa_challenges',
  {
    token_hash: text('token_hash').primaryKey(),
    user_id: integer('user_id')
      .notNull()
      .references(() => users.user_id, { onDelete: 'cascade' }),
    /** The scopes the password grant asked for, space-separated. */
    scope: text('scope').notNull(),
    expires_at: timestamp('expires_at', { withTimezone: true }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    used_at: timestamp('used_at', { withTimezone: true }),
  },
  (table) => [index('mfa_challenges_user_idx').on(table.user_id)],
);
