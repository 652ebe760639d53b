/** IntrospectionService: RFC 7662 token introspection for resource servers. */
import { eq } from 'drizzle-orm';
import { createDecoder } from 'fast-jwt';
import type { Executor } from '../backend/database.js';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../const.js';
import { authSessions, refreshTokens } from '../models/sessions.js';
import { users } from '../models/users.js';
import type { Introspection, IntrospectRequest } from '../schemas/introspection.js';
import { looksLikeAccessToken } from './access_token_secret.js';
import type { AccessTokenService } from './access_tokens.js';
import { AppCRUD, AppService, type ServiceContext } from './base.js';
import { allowedScopes, parseScope } from './scopes.js';
import type { SessionService } from './sessions.js';
import { hashRefreshToken, type TokenCodec } from './tokens.js';

const INACTIVE: Introspection = Object.freeze({ active: false });
const LOOKS_LIKE_JWT = /^[^.]+\.[^.]+\.[^.]+$/;
const epochSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

/** A refresh token with its session and user. */
interface RefreshTokenState {
  userId: number;
  email: string;
  scope: string;
  createdAt: Date;
  expiresAt: Date;
  used: boolean;
  revoked: boolean;
  isActive: boolean;
  isSuperuser: boolean;
}

class RefreshTokenStateCRUD extends AppCRUD<typeof refreshTokens> {
  async byHash(hash: string, tx?: Executor): Promise<RefreshTokenState | undefined> {
    const rows = await this.on(tx)
      .select({
        userId: users.user_id,
        email: users.email,
        scope: authSessions.scope,
        createdAt: refreshTokens.created_at,
        expiresAt: refreshTokens.expires_at,
        usedAt: refreshTokens.used_at,
        revokedAt: authSessions.revoked_at,
        isActive: users.is_active,
        isSuperuser: users.is_superuser,
      })
      .from(refreshTokens)
      .innerJoin(authSessions, eq(authSessions.session_id, refreshTokens.session_id))
      .innerJoin(users, eq(users.user_id, authSessions.user_id))
      .where(eq(refreshTokens.token_hash, hash));
    const row = rows[0];
    if (row === undefined) return undefined;
    const { usedAt, revokedAt, ...rest } = row;
    return { ...rest, used: usedAt !== null, revoked: revokedAt !== null };
  }
}

/** The scopes of a grant that the user's role still allows, as the bearer check counts them. */
function heldScopes(scope: string, isSuperuser: boolean): string {
  const held = allowedScopes(isSuperuser);
  return (parseScope(scope) ?? []).filter((one) => held.includes(one)).join(' ');
}

/**
 * Says whether a token is active and what it grants (RFC 7662), for any of the three kinds. A
 * token that is not active gets `{"active": false}` and nothing else, whatever the reason.
 */
export class IntrospectionService extends AppService {
  private readonly refreshStates: RefreshTokenStateCRUD;
  private readonly decode = createDecoder();

  constructor(
    context: ServiceContext,
    private readonly tokens: TokenCodec,
    private readonly sessions: SessionService,
    private readonly personalTokens: AccessTokenService,
  ) {
    super(context);
    this.refreshStates = new RefreshTokenStateCRUD(context, refreshTokens);
  }

  /** The hint is not needed: the three kinds differ in form, so each is looked up where it lives. */
  introspect(request: IntrospectRequest): Promise<Introspection> {
    const token = request.token.trim();
    if (looksLikeAccessToken(token)) return this.personalToken(token);
    if (LOOKS_LIKE_JWT.test(token)) return this.accessToken(token);
    return this.refreshToken(token);
  }

  private async accessToken(token: string): Promise<Introspection> {
    let grant;
    try {
      grant = this.tokens.verify(token);
    } catch {
      return INACTIVE;
    }
    const state = await this.sessions.state(grant.sessionId);
    if (state === undefined || !state.live || state.userId !== grant.userId) return INACTIVE;
    // Verified just above: decoding reads the registered claims the grant does not keep.
    const claims = this.decode(token) as Record<string, unknown>;
    return {
      active: true,
      scope: heldScopes(grant.scopes.join(' '), state.isSuperuser),
      username: grant.email,
      token_type: 'Bearer',
      ...numberClaim(claims, 'exp'),
      ...numberClaim(claims, 'iat'),
      sub: String(grant.userId),
      aud: typeof claims.aud === 'string' ? claims.aud : TOKEN_AUDIENCE,
      iss: typeof claims.iss === 'string' ? claims.iss : TOKEN_ISSUER,
      ...(typeof claims.jti === 'string' ? { jti: claims.jti } : {}),
    };
  }

  private async refreshToken(token: string): Promise<Introspection> {
    if (token === '') return INACTIVE;
    const found = await this.refreshStates.byHash(hashRefreshToken(token));
    if (found === undefined || found.used || found.revoked || !found.isActive) return INACTIVE;
    if (found.expiresAt.getTime() <= Date.now()) return INACTIVE;
    return {
      active: true,
      scope: heldScopes(found.scope, found.isSuperuser),
      username: found.email,
      token_type: 'refresh_token',
      exp: epochSeconds(found.expiresAt),
      iat: epochSeconds(found.createdAt),
      sub: String(found.userId),
      aud: TOKEN_AUDIENCE,
      iss: TOKEN_ISSUER,
    };
  }

  private async personalToken(token: string): Promise<Introspection> {
    const found = await this.personalTokens.find(token);
    if (found === undefined || found.revoked || !found.isActive) return INACTIVE;
    if (found.expiresAt !== null && found.expiresAt.getTime() <= Date.now()) return INACTIVE;
    return {
      active: true,
      scope: heldScopes(found.scope, found.isSuperuser),
      username: found.email,
      token_type: 'Bearer',
      ...(found.expiresAt === null ? {} : { exp: epochSeconds(found.expiresAt) }),
      iat: epochSeconds(found.createdAt),
      sub: String(found.userId),
      aud: TOKEN_AUDIENCE,
      iss: TOKEN_ISSUER,
      jti: found.tokenId,
    };
  }
}

function numberClaim(claims: Record<string, unknown>, name: 'exp' | 'iat'): Partial<Introspection> {
  const value = claims[name];
  return typeof value === 'number' ? { [name]: value } : {};
}
