// MYAPI_DATABASE__DSN read as the kind of database it names, and printed without its password.
import { resolve } from 'node:path';
import type { Dsn } from './types.js';

export function parseDsn(dsn: string): Dsn {
  if (/^postgres(ql)?:\/\//.test(dsn)) return { kind: 'postgres', url: dsn };
  const target = dsn.replace(/^pglite:/, '');
  if (target === 'memory' || target === 'memory://') return { kind: 'pglite', dataDir: undefined };
  return { kind: 'pglite', dataDir: resolve(target) };
}

/** postgresql://user:secret@host/db -> postgresql://user@host/db, for messages and logs. */
export function redactDsn(dsn: string): string {
  try {
    const url = new URL(dsn);
    url.password = '';
    return url.toString().replace(/:@/, '@');
  } catch {
    return dsn.replace(/\/\/[^@/]*@/, '//');
  }
}
