// Apps that sign with the key set (EdDSA or ES256) on a test database, served over a real socket.
import { buildApp, type App } from '../../src/app.js';
import type { Settings } from '../../src/backend/config.js';
import { createLogger } from '../../src/backend/logging.js';
import { signingKeys } from '../../src/models/signing_keys.js';
import { KeyEncryption } from '../../src/services/keys/crypto.js';
import { LogCapture, type TestDatabase } from './databases.js';
import { freePort } from './process.js';

export const KEYS_SECRET = 'test-keys-secret-that-is-long-enough-0123456789';

export interface KeySetApp {
  app: App;
  url: string;
  logs: LogCapture;
  close(): Promise<void>;
}

/**
 * An app on `t`'s database signing with the key set (no MYAPI_TOKEN_KEY), listening on a free
 * port of 127.0.0.1, its public URL (the issuer) set to that address.
 */
export async function keySetApp(
  t: TestDatabase,
  changes: Partial<Settings> = {},
  options: { tokenKey?: string; keysSecret?: string; beforeListen?: (app: App) => void } = {},
): Promise<KeySetApp> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Without MYAPI_TOKEN_KEY: the key set signs.
  const base: Settings = { ...t.settings, token_key: undefined };
  const logs = new LogCapture();
  const app = await buildApp({
    settings: {
      ...base,
      log_level: 'info',
      token_keys_secret: options.keysSecret ?? KEYS_SECRET,
      public_url: url,
      ...changes,
    },
    database: t.database,
    tokenKey: options.tokenKey,
    keysSecret: options.keysSecret ?? KEYS_SECRET,
    logger: createLogger('info', logs),
  });
  options.beforeListen?.(app);
  await app.listen({ host: '127.0.0.1', port });
  return {
    app,
    url,
    logs,
    close: () => app.close(),
  };
}

/** The private keys of the set as PEM, by kid: what an attacker who stole the database lacks. */
export async function privateKeys(t: TestDatabase): Promise<Map<string, string>> {
  const encryption = new KeyEncryption(KEYS_SECRET);
  const rows = await t.database.db.select().from(signingKeys);
  return new Map(
    rows.map((row) => [row.kid, encryption.decrypt(row.kid, row.private_key_encrypted)]),
  );
}

export function headerOf(token: string): Record<string, unknown> {
  const [header] = token.split('.');
  return JSON.parse(Buffer.from(header ?? '', 'base64url').toString()) as Record<string, unknown>;
}

export function claimsOf(token: string): Record<string, unknown> {
  const [, payload] = token.split('.');
  return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>;
}
