/** Drizzle table of the keys that sign access tokens (EdDSA or ES256), by key id. */
import { jsonb, text, timestamp } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';

/**
 * The key set. The newest key that is not retired signs; every key whose `verify_until` has not
 * passed (and is not retired) verifies and is published in the JWKS. The private key is stored
 * only encrypted (AES-256-GCM with the key from MYAPI_TOKEN_KEYS_SECRET, or the embedded
 * database's secret file).
 */
export const signingKeys = myapiSchema.table('signing_keys', {
  kid: text('kid').primaryKey(),
  /** 'EdDSA' (Ed25519) or 'ES256' (P-256). */
  algorithm: text('algorithm').notNull(),
  /** The public key as a JWK, as the JWKS publishes it (kid, alg and use added there). */
  public_jwk: jsonb('public_jwk').$type<Record<string, string>>().notNull(),
  /** base64url(iv) "." base64url(ciphertext) "." base64url(tag) of the PKCS#8 PEM. */
  private_key_encrypted: text('private_key_encrypted').notNull(),
  created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  /** Set when a newer key took over signing: the last token this one signed expires by then. */
  verify_until: timestamp('verify_until', { withTimezone: true }),
  /** Set by `myapi keys retire`: the key stops verifying at once. */
  retired_at: timestamp('retired_at', { withTimezone: true }),
});
