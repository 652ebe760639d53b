/** Drizzle table of the security audit log. */
import { bigserial, index, integer, jsonb, text, timestamp } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';

/** A value of an event's details: plain data only, never a secret (services/audit/crud.ts). */
export type AuditDetailValue = string | number | boolean | null;

/**
 * One security event: a login, a refusal, a revocation, an account change. Written in the
 * transaction of the change it records, so a change never commits without its row and a failed
 * change leaves none. `user_id` and `actor_id` are plain integers, not foreign keys: the events of
 * a deleted user are kept until the retention period ends.
 */
export const auditEvents = myapiSchema.table(
  'audit_events',
  {
    audit_id: bigserial('audit_id', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
    event: text('event').notNull(),
    /** 'success' or 'failure'. */
    outcome: text('outcome').notNull(),
    /** Why it failed, or what triggered it (a revocation's reason). */
    reason: text('reason'),
    /** The account the event is about. */
    user_id: integer('user_id'),
    /** Who did it when that is not the user themself (an admin); null from the CLI. */
    actor_id: integer('actor_id'),
    client_address: text('client_address'),
    user_agent: text('user_agent'),
    details: jsonb('details').$type<Record<string, AuditDetailValue>>().notNull().default({}),
  },
  (table) => [
    index('audit_events_at_idx').on(table.at),
    index('audit_events_user_idx').on(table.user_id, table.audit_id),
    index('audit_events_event_idx').on(table.event, table.audit_id),
  ],
);
