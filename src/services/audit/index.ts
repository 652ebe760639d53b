/** AuditService: the security audit log as admins read it, and its retention. */
import type { Executor } from '../../backend/database.js';
import { auditEvents } from '../../models/audit.js';
import { AppService, type ServiceContext } from '../base.js';
import { AuditCRUD, type AuditEntry, type AuditFilter, type AuditRecord } from './crud.js';

export {
  AUDIT_EVENTS,
  AuditCRUD,
  safeDetails,
  type AuditEntry,
  type AuditEventName,
  type AuditFilter,
  type AuditRecord,
  type ClientInfo,
} from './crud.js';

/** How many events one prune statement deletes: short transactions, however large the backlog. */
const PRUNE_BATCH = 5000;

export interface AuditPage {
  events: AuditRecord[];
  /** The `before` of the next page; absent on the last. */
  next?: number;
}

/**
 * Reading and pruning the audit log. Services that change accounts write to it themselves,
 * through `record` with their own transaction (see AuditCRUD.record).
 */
export class AuditService extends AppService {
  readonly crud: AuditCRUD;

  constructor(
    context: ServiceContext,
    private readonly retentionDays: number,
  ) {
    super(context);
    this.crud = new AuditCRUD(context, auditEvents);
  }

  /** Records one event, in `tx` when given (see AuditCRUD.record). */
  record(entry: AuditEntry, tx?: Executor): Promise<void> {
    return this.crud.record(entry, tx);
  }

  /** One page, newest first; one extra row says whether another page follows. */
  async list(filter: AuditFilter, limit: number): Promise<AuditPage> {
    const rows = await this.crud.page(filter, limit + 1);
    const events = rows.slice(0, limit);
    const last = events.at(-1);
    return rows.length > limit && last !== undefined ? { events, next: last.audit_id } : { events };
  }

  /** Deletes the events older than the retention period (or `days`); returns how many. */
  async prune(days = this.retentionDays): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await this.crud.prune(days, PRUNE_BATCH);
      total += deleted;
      if (deleted < PRUNE_BATCH) return total;
    }
  }
}
