/** Drizzle table of user accounts. */
import { sql } from 'drizzle-orm';
import { boolean, index, serial, text, timestamp } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';

export const users = myapiSchema.table(
  'users',
  {
    user_id: serial('user_id').primaryKey(),
    name: text('name').notNull(),
    // The tutorial's UNIQUE(email) is kept as is; logins match emails case-insensitively.
    email: text('email').notNull().unique(),
    hashed_password: text('hashed_password').notNull(),
    // Defaults keep rows from the tutorial and the core release valid: active, not an admin.
    is_active: boolean('is_active').notNull().default(true),
    is_superuser: boolean('is_superuser').notNull().default(false),
    // Rows that existed before sign-up (and accounts an operator makes) count as verified: the
    // default fills them in; only self-service sign-up writes null until the link is used.
    email_verified_at: timestamp('email_verified_at', { withTimezone: true }).defaultNow(),
  },
  (table) => [index('users_email_lower_idx').on(sql`lower(${table.email})`)],
);
