/** Drizzle table of the login throttle's counters. */
import { integer, text, timestamp } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';

/**
 * Failed-login counters for the brute-force throttle, shared by every process on the database.
 * `key` is a hash of the kind (account, address, or the pair) and its value. `pending` counts
 * attempts whose password is being checked right now; they are forgotten at `pending_until`, so
 * a process that dies mid-check cannot hold a counter forever.
 */
export const loginFailures = myapiSchema.table('login_failures', {
  key: text('key').primaryKey(),
  failures: integer('failures').notNull(),
  last_failed_at: timestamp('last_failed_at', { withTimezone: true }).notNull(),
  blocked_until: timestamp('blocked_until', { withTimezone: true }).notNull(),
  pending: integer('pending').notNull().default(0),
  pending_until: timestamp('pending_until', { withTimezone: true }).notNull().defaultNow(),
});
