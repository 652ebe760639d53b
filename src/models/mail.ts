/** Drizzle table of the mail outbox: mails written with the change that caused them, sent later. */
import { sql } from 'drizzle-orm';
import { bigserial, index, integer, text, timestamp } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';

/**
 * One mail to send. The bodies (which may hold a single-use link) are kept only until the mail
 * is delivered or given up on; then they are emptied and the row stays as a record.
 */
export const mailOutbox = myapiSchema.table(
  'mail_outbox',
  {
    mail_id: bigserial('mail_id', { mode: 'number' }).primaryKey(),
    /** The template it was made from, for logs and the record. */
    kind: text('kind').notNull(),
    recipient: text('recipient').notNull(),
    subject: text('subject').notNull(),
    text_body: text('text_body'),
    html_body: text('html_body'),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    attempts: integer('attempts').notNull().default(0),
    /** When a sender may take it next: after a back-off, or after a crashed sender's lease. */
    next_attempt_at: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    sent_at: timestamp('sent_at', { withTimezone: true }),
    failed_at: timestamp('failed_at', { withTimezone: true }),
    last_error: text('last_error'),
  },
  (table) => [
    index('mail_outbox_due_idx')
      .on(table.next_attempt_at)
      .where(sql`${table.sent_at} is null and ${table.failed_at} is null`),
  ],
);
