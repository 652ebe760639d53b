/** TokenCodec and refresh tokens: signing and verifying the JWT access tokens. */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import { TOKEN_AUDIENCE, TOKEN_ISSUER, type Scope } from '../const.js';
import { UnauthorizedError } from '../exc.js';
import type { Principal, TokenClaims } from '../schemas/auth.js';
import type { ExternalIssuers } from './keys/external.js';
import { parseScope } from './scopes.js';

export interface IssuedToken {
  token: string;
  expiresIn: number;
}

/** Who a token is for and what it grants: the claims we sign besides the registered ones. */
export interface AccessGrant {
  userId: number;
  email: string;
  name: string;
  sessionId: string;
  scopes: readonly Scope[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function isAccessClaims(payload: unknown): payload is TokenClaims {
  const claims = payload as Partial<TokenClaims> | null;
  return (
    typeof claims?.exp === 'number' &&
    typeof claims.sub === 'string' &&
    /^[1-9][0-9]{0,9}$/.test(claims.sub) &&
    typeof claims.sid === 'string' &&
    UUID.test(claims.sid) &&
    typeof claims.scope === 'string' &&
    typeof claims.email === 'string' &&
    typeof claims.name === 'string'
  );
}

/** Refresh tokens are 256 random bits; the database keeps only this digest of them. */
/**
 * The refresh token that replaces `refreshToken`: an HMAC of a random salt keyed with the token
 * itself. Only a holder of the old token can derive it, and only with the salt from the
 * database, so a retry can be given the same successor although only hashes are stored.
 */
export function successorOf(refreshToken: string, salt: string): string {
  return createHmac('sha256', refreshToken).update(salt).digest('base64url');
}

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Verified access tokens remembered per process; the oldest is forgotten beyond this. */
const VERIFIED_TOKENS_KEPT = 10_000;

export type TokenVerifier = (token: string) => unknown;

/** What signs access tokens and finds the verifier of one: an HS256 secret or the key set. */
export interface TokenKeys {
  /** A signed token of these claims, with exp, iat, iss and aud added. */
  sign(payload: Record<string, unknown>): string;
  /** The verifier for this token (pinned to one key and algorithm), or undefined: refused. */
  verifierFor(token: string): TokenVerifier | undefined;
  /** Calls `listener` whenever a key stops verifying, so tokens it signed are checked again. */
  onKeysDropped?(listener: () => void): void;
}

/** HS256 under MYAPI_TOKEN_KEY: the FastAPI app's tokens, signed and checked as it does. */
export class HmacKeys implements TokenKeys {
  readonly sign: (payload: Record<string, unknown>) => string;
  private readonly verifier: TokenVerifier;

  constructor(key: string, lifetimeSeconds: number) {
    this.sign = createSigner({
      key,
      algorithm: 'HS256',
      expiresIn: lifetimeSeconds * 1000,
      iss: TOKEN_ISSUER,
      aud: TOKEN_AUDIENCE,
    });
    this.verifier = createVerifier({
      key,
      algorithms: ['HS256'],
      allowedIss: TOKEN_ISSUER,
      allowedAud: TOKEN_AUDIENCE,
      requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub'],
    });
  }

  verifierFor(): TokenVerifier {
    return this.verifier;
  }
}

/**
 * Issues and verifies access tokens with `keys`: each verifier pins its algorithm (no
 * `alg: none`, no RS/HS confusion) and requires and checks exp, iss and aud. A token says which
 * login session it belongs to (`sid`), so revoking the session stops it.
 *
 * A verified token's grant is remembered until its exp, keyed by the whole token, so a client's
 * next request costs a map lookup instead of a signature check and a JSON parse. The key is the
 * token itself rather than fast-jwt's cache, which hashes every token with SHA-256 to make its
 * key (measurably slower per request; bench/ has the figures). Keeping tokens in memory shows
 * nothing a heap dump would not: the signing key is there too.
 */
export class TokenCodec {
  private readonly lifetimeSeconds: number;
  private readonly verified = new Map<string, { grant: AccessGrant; expiresAtMs: number }>();

  constructor(
    private readonly keys: TokenKeys,
    lifetimeMinutes: number,
    private readonly external?: ExternalIssuers,
  ) {
    this.lifetimeSeconds = lifetimeMinutes * 60;
    keys.onKeysDropped?.(() => {
      this.verified.clear();
    });
  }

  issue(grant: AccessGrant): IssuedToken {
    const token = this.keys.sign({
      sub: String(grant.userId),
      sid: grant.sessionId,
      scope: grant.scopes.join(' '),
      email: grant.email,
      name: grant.name,
      jti: randomUUID(),
    });
    return { token, expiresIn: this.lifetimeSeconds };
  }

  /**
   * What a token grants; UnauthorizedError for anything that is not our live access token. The
   * grant is shared by every request with the same token: frozen, so none can change it.
   */
  verify(token: string): AccessGrant {
    const known = this.verified.get(token);
    if (known !== undefined) {
      if (Date.now() < known.expiresAtMs) return known.grant;
      this.verified.delete(token);
    }
    const { grant, expiresAtMs } = this.verifyNow(token);
    if (this.verified.size >= VERIFIED_TOKENS_KEPT) {
      const oldest = this.verified.keys().next();
      if (oldest.done !== true) this.verified.delete(oldest.value);
    }
    this.verified.set(token, { grant, expiresAtMs });
    return grant;
  }

  private verifyNow(token: string): { grant: AccessGrant; expiresAtMs: number } {
    const verifier = this.keys.verifierFor(token);
    if (verifier === undefined) throw new UnauthorizedError('Could not validate credentials', true);
    let payload: unknown;
    try {
      payload = verifier(token);
    } catch (error) {
      const expired = error instanceof TokenError && error.code === TokenError.codes.expired;
      throw new UnauthorizedError(
        expired ? 'Token has expired' : 'Could not validate credentials',
        true,
        error,
      );
    }
    // Tokens from before sessions existed carry no sid: their holders log in again.
    if (!isAccessClaims(payload)) {
      throw new UnauthorizedError('Could not validate credentials', true);
    }
    const grant: AccessGrant = Object.freeze({
      userId: Number(payload.sub),
      sessionId: payload.sid,
      email: payload.email,
      name: payload.name,
      scopes: Object.freeze(parseScope(payload.scope) ?? []),
    });
    return { grant, expiresAtMs: payload.exp * 1000 };
  }

  /**
   * The principal of another trusted issuer's token (keys/external.ts), or undefined when the
   * token does not come from one. Only asked after our own verification refused the token.
   */
  foreign(token: string, required: readonly Scope[]): Promise<Principal> | undefined {
    return this.external?.authenticate(token, required);
  }

  /** The session a live access token of ours names; undefined for anything else. */
  sessionOf(token: string): string | undefined {
    try {
      return this.verify(token).sessionId;
    } catch {
      return undefined;
    }
  }
}
