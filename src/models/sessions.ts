/** Drizzle tables of logins: sessions and their refresh tokens. */
import { index, integer, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';
import { users } from './users.js';

/**
 * One login: the family of refresh tokens issued from one password grant, and the access tokens
 * minted with them (their `sid` claim). Revoking the session stops all of them.
 */
export const authSessions = myapiSchema.table(
  'auth_sessions',
  {
    session_id: uuid('session_id').primaryKey(),
    user_id: integer('user_id')
      .notNull()
      .references(() => users.user_id, { onDelete: 'cascade' }),
    /** The granted scopes, space-separated as in the token. */
    scope: text('scope').notNull(),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    /** The newest refresh token's expiry: past it the session is dead and may be pruned. */
    expires_at: timestamp('expires_at', { withTimezone: true }).notNull(),
    revoked_at: timestamp('revoked_at', { withTimezone: true }),
    revoked_reason: text('revoked_reason'),
    /** The login or the last refresh: when the client last showed this login's refresh token. */
    last_used_at: timestamp('last_used_at', { withTimezone: true }).notNull().defaultNow(),
    /** Where the login came from and with what, as GET /users/me/sessions shows them. */
    client_address: text('client_address'),
    user_agent: text('user_agent'),
  },
  (table) => [index('auth_sessions_user_idx').on(table.user_id)],
);

/** Refresh tokens, stored only as a SHA-256 of the opaque random string the client holds. */
export const refreshTokens = myapiSchema.table(
  'refresh_tokens',
  {
    token_hash: text('token_hash').primaryKey(),
    session_id: uuid('session_id')
      .notNull()
      .references(() => authSessions.session_id, { onDelete: 'cascade' }),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expires_at: timestamp('expires_at', { withTimezone: true }).notNull(),
    /** Set when the token is exchanged; a second use is a replay. */
    used_at: timestamp('used_at', { withTimezone: true }),
    /**
     * Set with used_at: the random salt its successor was derived from (an HMAC keyed with this
     * token), so a retry within MYAPI_REFRESH_REUSE_SECONDS gets the same successor back.
     */
    successor_salt: text('successor_salt'),
  },
  (table) => [index('refresh_tokens_session_idx').on(table.session_id)],
);
