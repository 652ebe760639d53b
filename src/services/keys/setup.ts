/** Which keys sign access tokens, decided once at start from the settings (docs/authentication.md). */
import type { Settings } from '../../backend/config.js';
import { TOKEN_ISSUER } from '../../const.js';
import type { ServiceContext } from '../base.js';
import { KeyRing } from '../signing_keys.js';
import { HmacKeys, type TokenKeys } from '../tokens.js';
import { KeyEncryption, type SigningAlgorithm } from './crypto.js';

export interface TokenKeySources {
  /** MYAPI_TOKEN_KEY, or an older embedded installation's key file. */
  tokenKey: string | undefined;
  /** What encrypts the key set's private keys (backend/keys_secret.ts). */
  keysSecret: string | undefined;
  log: { warn(object: object, message: string): void };
}

export interface OpenedTokenKeys {
  keys: TokenKeys;
  /** The key set, when tokens are signed with one (absent in HS256 mode). */
  ring: KeyRing | undefined;
  /** The `iss` of the tokens this server signs. */
  issuer: string;
}

/** The algorithm new tokens are signed with. */
export function signingAlgorithm(settings: Settings): SigningAlgorithm | 'HS256' {
  if (settings.token_algorithm !== undefined) return settings.token_algorithm;
  return settings.token_key === undefined ? 'EdDSA' : 'HS256';
}

/** The issuer of the key set's tokens: MYAPI_PUBLIC_URL when set (RFC 8414), else "myapi". */
export function keySetIssuer(settings: Settings): string {
  return settings.public_url === undefined ? TOKEN_ISSUER : settings.public_url.replace(/\/+$/, '');
}

/**
 * MYAPI_TOKEN_KEY without another algorithm: HS256 exactly as before. Otherwise the key set,
 * still accepting HS256 tokens (no kid) under the older key where there is one, so a change of
 * algorithm logs nobody out.
 */
export async function openTokenKeys(
  context: ServiceContext,
  settings: Settings,
  sources: TokenKeySources,
): Promise<OpenedTokenKeys> {
  const algorithm = signingAlgorithm(settings);
  const lifetimeSeconds = settings.token_expire_minutes * 60;
  if (algorithm === 'HS256') {
    if (sources.tokenKey === undefined) throw new Error('HS256 needs MYAPI_TOKEN_KEY');
    return {
      keys: new HmacKeys(sources.tokenKey, lifetimeSeconds),
      ring: undefined,
      issuer: TOKEN_ISSUER,
    };
  }
  if (sources.keysSecret === undefined) {
    throw new Error('signing with a key set needs MYAPI_TOKEN_KEYS_SECRET');
  }
  const issuer = keySetIssuer(settings);
  const ring = await KeyRing.open(context, {
    algorithm,
    encryption: new KeyEncryption(sources.keysSecret),
    lifetimeSeconds,
    reloadSeconds: settings.token_keys_reload_seconds,
    issuer,
    legacy:
      sources.tokenKey === undefined ? undefined : { key: sources.tokenKey, issuer: TOKEN_ISSUER },
    log: sources.log,
  });
  return { keys: ring, ring, issuer };
}
