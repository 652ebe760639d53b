// PGlite in this process as a Database: in memory, or an embedded directory a tool opened itself.
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { unaccent } from '@electric-sql/pglite/contrib/unaccent';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { statementNames } from './pool.js';
import type { AppDb, Database, Dsn } from './types.js';

/**
 * PGlite ships contrib extensions as separate modules that must be loaded at creation; the movies
 * migration creates unaccent and pg_trgm (title search), which a PostgreSQL server has built in.
 */
export const PGLITE_EXTENSIONS = { unaccent, pg_trgm };

export function inProcessPglite(
  client: PGlite,
  label: string,
  dsn: Dsn,
  onClose: () => Promise<void>,
): Database {
  const db = drizzle({ client }) as unknown as AppDb;
  // PGlite runs the text as given; the names are still checked, as on a server.
  const checkName = statementNames();
  return {
    db,
    async queryArrays(name, text, params) {
      checkName(name, text);
      const result = await client.query<unknown[]>(text, params, { rowMode: 'array' });
      return result.rows;
    },
    label,
    dsn,
    async ping() {
      await db.execute(sql`select 1`);
    },
    async close() {
      await client.close();
      await onClose();
    },
  };
}

export async function openMemory(dsn: Dsn): Promise<Database> {
  const client = await PGlite.create({ extensions: PGLITE_EXTENSIONS });
  return inProcessPglite(client, 'pglite:memory', dsn, async () => undefined);
}
