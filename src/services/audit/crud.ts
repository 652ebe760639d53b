/** AuditCRUD: the queries of the security audit log (record, page, prune). */
import { and, desc, eq, gte, lt, lte, sql, type SQL } from 'drizzle-orm';
import type { Executor } from '../../backend/database.js';
import { auditEvents, type AuditDetailValue } from '../../models/audit.js';
import { AppCRUD } from '../base.js';

/** The events the log knows; a new kind of event adds its name here. */
export const AUDIT_EVENTS = [
  'login',
  'login.throttled',
  'token.refresh_reuse',
  'session.revoke',
  'password.change',
  'password.reset',
  'email.change',
  'signup',
  'mfa.enrol',
  'mfa.challenge',
  'mfa.confirm',
  'mfa.use',
  'mfa.disable',
  'mfa.reset',
  'user.create',
  'user.update',
  'user.deactivate',
  'user.activate',
  'user.promote',
  'user.demote',
  'user.delete',
] as const;
export type AuditEventName = (typeof AUDIT_EVENTS)[number];

/** Where a request came from: what the audit log and the login throttle know of a client. */
export interface ClientInfo {
  address: string;
  userAgent?: string | undefined;
}

/** One event as a service records it. */
export interface AuditEntry {
  event: AuditEventName;
  /** Defaults to 'success'. */
  outcome?: 'success' | 'failure';
  reason?: string;
  userId?: number | undefined;
  actorId?: number | undefined;
  client?: ClientInfo | undefined;
  /** Identifiers and facts only (a session id, the fields changed); secrets are dropped. */
  details?: Record<string, AuditDetailValue | undefined>;
}

/** A recorded event, as GET /audit and the CLI show it. */
export interface AuditRecord {
  audit_id: number;
  at: string;
  event: string;
  outcome: string;
  reason: string | null;
  user_id: number | null;
  actor_id: number | null;
  client_address: string | null;
  user_agent: string | null;
  details: Record<string, AuditDetailValue>;
}

export interface AuditFilter {
  userId?: number;
  event?: string;
  since?: Date;
  until?: Date;
  /** Keyset: only events older than this id (the previous page's last). */
  before?: number;
}

/** Detail keys that could hold a secret: never stored, whatever a caller passes. */
const SECRET_KEY = /pass|secret|token|otp|code|hash|key|authorization|cookie/i;
const MAX_TEXT = 256;

const clip = (value: string | undefined): string | null =>
  value === undefined ? null : value.slice(0, MAX_TEXT);

/** The details as stored: no key that may name a secret, no long text, no undefined. */
export function safeDetails(
  details: Record<string, AuditDetailValue | undefined> = {},
): Record<string, AuditDetailValue> {
  const kept: Record<string, AuditDetailValue> = {};
  for (const [key, value] of Object.entries(details)) {
    if (value === undefined || SECRET_KEY.test(key)) continue;
    kept[key] = typeof value === 'string' ? value.slice(0, MAX_TEXT) : value;
  }
  return kept;
}

export class AuditCRUD extends AppCRUD<typeof auditEvents> {
  /**
   * Writes one event. Pass the transaction of the change it records: the row then commits with
   * the change or not at all. Without `tx` it stands alone (a refused login changes nothing).
   */
  async record(entry: AuditEntry, tx?: Executor): Promise<void> {
    await this.recording(entry, tx);
  }

  /** The insert of an event, not yet run: to run with others (writesTogether). */
  recording(entry: AuditEntry, tx?: Executor) {
    return this.on(tx)
      .insert(auditEvents)
      .values({
        event: entry.event,
        outcome: entry.outcome ?? 'success',
        reason: clip(entry.reason),
        user_id: entry.userId ?? null,
        actor_id: entry.actorId ?? null,
        client_address: clip(entry.client?.address),
        user_agent: clip(entry.client?.userAgent),
        details: safeDetails(entry.details),
      });
  }

  /** Newest first, `limit` events matching `filter`. */
  async page(filter: AuditFilter, limit: number, tx?: Executor): Promise<AuditRecord[]> {
    const conditions: SQL[] = [];
    if (filter.userId !== undefined) conditions.push(eq(auditEvents.user_id, filter.userId));
    if (filter.event !== undefined) conditions.push(eq(auditEvents.event, filter.event));
    if (filter.since !== undefined) conditions.push(gte(auditEvents.at, filter.since));
    if (filter.until !== undefined) conditions.push(lte(auditEvents.at, filter.until));
    if (filter.before !== undefined) conditions.push(lt(auditEvents.audit_id, filter.before));
    const rows = await this.on(tx)
      .select()
      .from(auditEvents)
      .where(and(...conditions))
      .orderBy(desc(auditEvents.audit_id))
      .limit(limit);
    return rows.map((row) => ({ ...row, at: row.at.toISOString() }));
  }

  /** Deletes events older than `days`, at most `batch` of them; returns how many. */
  async prune(days: number, batch: number, tx?: Executor): Promise<number> {
    const rows = await this.on(tx)
      .delete(auditEvents)
      .where(
        sql`${auditEvents.audit_id} in (select ${auditEvents.audit_id} from ${auditEvents}
          where ${auditEvents.at} < now() - make_interval(days => ${days}) limit ${batch})`,
      )
      .returning({ id: auditEvents.audit_id });
    return rows.length;
  }
}
