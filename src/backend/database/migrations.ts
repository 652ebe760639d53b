// The migration runner: applies drizzle/'s SQL files once each, and refuses changed applied ones.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { queryRows, type AppDb, type Executor } from './types.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../../drizzle', import.meta.url));
const BREAKPOINT = '--> statement-breakpoint';
/** Any fixed number: serialises concurrent `migrate` runs against one server. */
const MIGRATION_LOCK = 72_410_001;

interface Migration {
  tag: string;
  hash: string;
  statements: string[];
}

/**
 * An applied migration's file no longer says what the database ran: the schema and the code may
 * disagree in ways no check would catch later, so nothing starts until a person decides.
 */
export class MigrationChangedError extends Error {
  constructor(readonly tags: string[]) {
    super(
      `applied migration${tags.length > 1 ? 's' : ''} ${tags.join(', ')} changed since ` +
        'this database ran them: restore the file from version control and add a new migration instead',
    );
    this.name = 'MigrationChangedError';
  }
}

function readMigrations(): Migration[] {
  const journal = JSON.parse(
    readFileSync(join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8'),
  ) as {
    entries: { tag: string }[];
  };
  return journal.entries.map(({ tag }) => {
    const text = readFileSync(join(MIGRATIONS_DIR, `${tag}.sql`), 'utf8');
    return {
      tag,
      hash: createHash('sha256').update(text).digest('hex'),
      statements: text
        .split(BREAKPOINT)
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    };
  });
}

/** What the database recorded, by tag; empty before the first migration. */
async function appliedHashes(executor: Executor): Promise<Map<string, string>> {
  const [table] = await queryRows<{ name: string | null }>(
    executor,
    sql`select to_regclass('myapi.schema_migrations')::text as name`,
  );
  if (table?.name == null) return new Map();
  const rows = await queryRows<{ tag: string; hash: string }>(
    executor,
    sql`select tag, hash from myapi.schema_migrations`,
  );
  return new Map(rows.map((row) => [row.tag, row.hash]));
}

/** The repository's migrations not applied yet; throws when an applied one's file changed. */
function pending(migrations: Migration[], applied: Map<string, string>): Migration[] {
  const changed = migrations
    .filter((m) => applied.has(m.tag) && applied.get(m.tag) !== m.hash)
    .map((m) => m.tag);
  if (changed.length > 0) throw new MigrationChangedError(changed);
  return migrations.filter((m) => !applied.has(m.tag));
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: string[];
}

/**
 * Applies drizzle-kit's SQL files that this database has not seen, all in one transaction under an
 * advisory lock: either every pending migration lands or none does, and two runs never interleave.
 */
export async function migrate(
  db: AppDb,
  onApplied?: (tag: string) => void,
): Promise<MigrationReport> {
  const migrations = readMigrations();
  return db.transaction(async (tx) => {
    // A migration waits its turn and may build indexes for long: the request limits do not apply.
    await tx.execute(sql`set local lock_timeout = 0`);
    await tx.execute(sql`set local statement_timeout = 0`);
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.execute(sql`create schema if not exists myapi`);
    await tx.execute(sql`
      create table if not exists myapi.schema_migrations (
        tag text primary key,
        hash text not null,
        applied_at timestamptz not null default now()
      )`);
    const todo = pending(migrations, await appliedHashes(tx));
    const report: MigrationReport = {
      applied: [],
      alreadyApplied: migrations.filter((m) => !todo.includes(m)).map((m) => m.tag),
    };
    for (const migration of todo) {
      for (const statement of migration.statements) await tx.execute(sql.raw(statement));
      await tx.execute(
        sql`insert into myapi.schema_migrations (tag, hash) values (${migration.tag}, ${migration.hash})`,
      );
      report.applied.push(migration.tag);
      onApplied?.(migration.tag);
    }
    return report;
  });
}

/** Migrations in the repository that this database has not applied yet. */
export async function pendingMigrations(db: AppDb): Promise<string[]> {
  return pending(readMigrations(), await appliedHashes(db)).map((m) => m.tag);
}
