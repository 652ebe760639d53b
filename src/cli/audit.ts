/** `myapi audit` and `myapi audit prune`: the security audit log for an operator. */
import { InvalidArgumentError, type Command } from 'commander';
import { AUDIT_EVENTS, type AuditFilter, type AuditRecord } from '../services/audit/index.js';
import { AUDIT_PAGE_MAX } from '../schemas/audit.js';
import { InputError, plural, positiveInteger, withAccounts } from './common.js';

interface ListOptions {
  user?: string;
  event?: string;
  since?: string;
  until?: string;
  limit: number;
  json: boolean;
}

function instant(value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new InvalidArgumentError('must be a date or date-time, e.g. 2026-01-31T12:00:00Z');
  }
  return date;
}

function eventName(value: string): string {
  if (!(AUDIT_EVENTS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`must be one of ${AUDIT_EVENTS.join(', ')}`);
  }
  return value;
}

/** Tab-separated, one event a line; a cell never holds a tab or a line break. */
function row(event: AuditRecord): string {
  const cell = (value: string | number | null) =>
    value === null ? '-' : String(value).replace(/[\t\r\n]/g, ' ');
  return [
    event.audit_id,
    event.at,
    event.event,
    event.outcome,
    event.reason,
    event.user_id,
    event.actor_id,
    event.client_address,
    JSON.stringify(event.details),
  ]
    .map(cell)
    .join('\t');
}

const HEADER = 'audit_id\tat\tevent\toutcome\treason\tuser_id\tactor_id\tclient_address\tdetails';

function listEvents(options: ListOptions): Promise<void> {
  return withAccounts(async ({ audit, users }) => {
    const filter: AuditFilter = {};
    if (options.user !== undefined) {
      filter.userId = /^[0-9]+$/.test(options.user)
        ? Number(options.user)
        : (await users.getByEmail(options.user)).user_id;
    }
    if (options.event !== undefined) filter.event = options.event;
    if (options.since !== undefined) filter.since = instant(options.since);
    if (options.until !== undefined) filter.until = instant(options.until);
    if (!options.json) process.stdout.write(`${HEADER}\n`);
    let left = options.limit;
    while (left > 0) {
      const page = await audit.list(filter, Math.min(left, AUDIT_PAGE_MAX));
      for (const event of page.events) {
        process.stdout.write(`${options.json ? JSON.stringify(event) : row(event)}\n`);
      }
      left -= page.events.length;
      if (page.next === undefined) break;
      filter.before = page.next;
    }
  });
}

export function registerAudit(program: Command): void {
  const audit = program
    .command('audit')
    .description('show the security audit log, newest first (see also: audit prune)')
    .option('--user <email-or-id>', 'only events about this user')
    .option('--event <name>', 'only events of this kind', eventName)
    .option('--since <time>', 'only events at or after this time (ISO 8601)', (v: string) => {
      instant(v);
      return v;
    })
    .option('--until <time>', 'only events at or before this time (ISO 8601)', (v: string) => {
      instant(v);
      return v;
    })
    .option('--limit <n>', 'at most this many events', positiveInteger, 100)
    .option('--json', 'one JSON object a line instead of a table', false)
    .action(listEvents);

  audit
    .command('prune')
    .description('delete events older than the retention period (MYAPI_AUDIT__RETENTION_DAYS)')
    .option('--days <n>', 'keep this many days instead', positiveInteger)
    .action((options: { days?: number }) =>
      withAccounts(async ({ audit: service }) => {
        if (options.days !== undefined && options.days > 36_500) {
          throw new InputError('--days must be at most 36500');
        }
        const deleted = await service.prune(options.days);
        process.stdout.write(`deleted ${plural(deleted, 'audit event')}\n`);
      }),
    );
}
