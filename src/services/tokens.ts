import { randomUUID } from 'node:crypto';
import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../const.js';
import { UnauthorizedError } from '../exc.js';
import type { Principal } from '../schemas/auth.js';
import type { User } from '../schemas/users.js';

export interface IssuedToken {
  token: string;
  expiresIn: number;
}

interface AccessClaims {
  sub: string;
  email: string;
  name: string;
}

function isAccessClaims(payload: unknown): payload is AccessClaims {
  const claims = payload as Partial<AccessClaims> | null;
  return (
    typeof claims?.sub === 'string' &&
    /^[1-9][0-9]{0,9}$/.test(claims.sub) &&
    typeof claims.email === 'string' &&
    typeof claims.name === 'string'
  );
}

/**
 * Issues and verifies HS256 access tokens. The algorithm is pinned (no `alg: none`, no RS/HS
 * confusion) and exp, iss and aud are required and checked. Verified tokens are cached by
 * fast-jwt (bounded, never past their exp), which keeps the per-request cost low.
 */
export class TokenCodec {
  private readonly sign: (payload: Record<string, unknown>) => string;
  private readonly verifyToken: (token: string) => unknown;
  private readonly lifetimeSeconds: number;

  constructor(key: string, lifetimeMinutes: number) {
    this.lifetimeSeconds = lifetimeMinutes * 60;
    this.sign = createSigner({
      key,
      algorithm: 'HS256',
      expiresIn: this.lifetimeSeconds * 1000,
      iss: TOKEN_ISSUER,
      aud: TOKEN_AUDIENCE,
    });
    this.verifyToken = createVerifier({
      key,
      algorithms: ['HS256'],
      allowedIss: TOKEN_ISSUER,
      allowedAud: TOKEN_AUDIENCE,
      requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub'],
      cache: 10_000,
    });
  }

  issue(user: User): IssuedToken {
    const token = this.sign({
      sub: String(user.user_id),
      email: user.email,
      name: user.name,
      jti: randomUUID(),
    });
    return { token, expiresIn: this.lifetimeSeconds };
  }

  /** The principal a token names; UnauthorizedError for anything that is not our live token. */
  verify(token: string): Principal {
    let payload: unknown;
    try {
      payload = this.verifyToken(token);
    } catch (error) {
      const expired = error instanceof TokenError && error.code === TokenError.codes.expired;
      throw new UnauthorizedError(
        expired ? 'Token has expired' : 'Could not validate credentials',
        true,
        error,
      );
    }
    if (!isAccessClaims(payload)) {
      throw new UnauthorizedError('Could not validate credentials', true);
    }
    return { userId: Number(payload.sub), email: payload.email, name: payload.name };
  }
}
