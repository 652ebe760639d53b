/** Drizzle table of user accounts. */
import { sql } from 'drizzle-orm';
import { boolean, index, serial, text } from 'drizzle-orm/pg-core';
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
  },
  (table) => [index('users_email_lower_idx').on(sql`lower(${table.email})`)],
);
