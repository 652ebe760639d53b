/** Drizzle table of personal access tokens. */
import { index, integer, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';
import { authSessions } from './sessions.js';
import { users } from './users.js';

/**
 * Personal access tokens. Each is a login session of its own (`token_id` is its session's id),
 * so revoking it, disabling its user or changing the user's password ends it through the same
 * session check as an access token; its row goes with the session. Only a SHA-256 of the
 * secret is kept.
 */
export const personalAccessTokens = myapiSchema.table(
  'personal_access_tokens',
  {
    token_id: uuid('token_id')
      .primaryKey()
      .references(() => authSessions.session_id, { onDelete: 'cascade' }),
    user_id: integer('user_id')
      .notNull()
      .references(() => users.user_id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    token_hash: text('token_hash').notNull().unique(),
    /** The first characters of the secret, for listings. */
    prefix: text('prefix').notNull(),
    /** The granted scopes, space-separated as in an access token. */
    scope: text('scope').notNull(),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    /** Null: never expires (only where MYAPI_ACCESS_TOKENS__ALLOW_NO_EXPIRY allows it). */
    expires_at: timestamp('expires_at', { withTimezone: true }),
    /** Written at most once a minute per token and process. */
    last_used_at: timestamp('last_used_at', { withTimezone: true }),
  },
  (table) => [index('personal_access_tokens_user_idx').on(table.user_id)],
);
