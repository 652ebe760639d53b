// The secret that encrypts the signing keys at rest: configured, or made once with embedded data.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Settings } from './config.js';
import type { DatabaseLog, Dsn } from './database/types.js';

const SECRET_FILE = 'myapi-keys.secret';
const secretForMemory = randomBytes(48).toString('base64url');

/** The embedded database's secret file: made once, kept with the data, readable by its owner only. */
export function embeddedKeysSecret(dataDir: string): {
  secret: string;
  created: boolean;
  path: string;
} {
  const path = join(dataDir, SECRET_FILE);
  try {
    return { secret: readFileSync(path, 'utf8').trim(), created: false, path };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(48).toString('base64url');
  try {
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process (a CLI command beside the starting server) made it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return embeddedKeysSecret(dataDir);
    throw error;
  }
  return { secret, created: true, path };
}

/**
 * MYAPI_TOKEN_KEYS_SECRET, or the embedded database's secret file, or (pglite:memory) a random
 * secret that ends with the process like the database. Undefined where config.ts already
 * refused to start (a PostgreSQL server without the setting).
 */
export function resolveKeysSecret(
  settings: Settings,
  dsn: Dsn,
  log: DatabaseLog,
): string | undefined {
  if (settings.token_keys_secret !== undefined) return settings.token_keys_secret;
  if (dsn.kind !== 'pglite') return undefined;
  if (dsn.dataDir === undefined) return secretForMemory;
  const { secret, created, path } = embeddedKeysSecret(dsn.dataDir);
  if (created)
    log.info(`generated the secret that encrypts the signing keys and kept it in ${path}`);
  return secret;
}
