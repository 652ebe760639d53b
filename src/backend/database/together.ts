import { sql, type SQL, type SQLWrapper } from 'drizzle-orm';

/**
 * Writes that CRUD classes built (and did not run) as one statement: each but the last in a
 * data-modifying WITH, the last as the main statement. PostgreSQL runs every one of them exactly
 * once, atomically, in one round trip instead of a transaction's begin, writes and commit. They
 * all see the database as it was before the statement, not each other's rows; the foreign keys
 * between them are checked at its end, so a row may refer to one inserted beside it.
 */
export function writesTogether(writes: readonly SQLWrapper[]): SQL {
  const last = writes.at(-1);
  if (last === undefined) throw new Error('writesTogether needs at least one write');
  // getSQL(): a query builder itself would be put in parentheses, which a statement cannot be.
  const ctes = writes
    .slice(0, -1)
    .map((write, index) => sql`${sql.raw(`w${index}`)} as (${write.getSQL()})`);
  if (ctes.length === 0) return last.getSQL();
  return sql`with ${sql.join(ctes, sql`, `)} ${last.getSQL()}`;
}
