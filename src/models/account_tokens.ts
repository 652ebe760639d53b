/** Drizzle table of single-use account tokens: email verification, password reset, invitations. */
import { index, integer, text, timestamp } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';
import { users } from './users.js';

/** Stored only as a SHA-256 of the random string mailed to the user. */
export const accountTokens = myapiSchema.table(
  'account_tokens',
  {
    token_hash: text('token_hash').primaryKey(),
    /** verify_email, change_email, password_reset or invitation. */
    purpose: text('purpose').notNull(),
    /** The account it acts on; none for an invitation. */
    user_id: integer('user_id').references(() => users.user_id, { onDelete: 'cascade' }),
    /** The address it was mailed to: the new address of an email change, the invitee's. */
    email: text('email').notNull(),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expires_at: timestamp('expires_at', { withTimezone: true }).notNull(),
    used_at: timestamp('used_at', { withTimezone: true }),
  },
  (table) => [
    index('account_tokens_user_idx').on(table.user_id),
    index('account_tokens_expires_idx').on(table.expires_at),
  ],
);
