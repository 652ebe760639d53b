import type { Scope } from '../const.js';
import { InsufficientScopeError, UnauthorizedError } from '../exc.js';
import type { Principal } from '../schemas/auth.js';
import { looksLikeAccessToken } from './access_token_secret.js';
import type { AccessTokenService, PersonalGrant } from './access_tokens.js';
import { allowedScopes } from './scopes.js';
import type { SessionService, SessionState } from './sessions.js';
import type { AccessGrant, TokenCodec } from './tokens.js';

const BEARER = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)[ ]*$/i;

/**
 * The check every protected route runs: a valid signature (or a personal access token, or a
 * trusted issuer's token), a live session, an active user, and the route's scopes.
 */
export class BearerCheck {
  constructor(
    private readonly tokens: TokenCodec,
    private readonly sessions: SessionService,
    private readonly personalTokens: AccessTokenService,
  ) {}

  /**
   * The principal of an `Authorization: Bearer` header holding every scope in `required`.
   * Synchronous while the session's state is fresh in memory; a promise when it must be read.
   */
  authenticate(
    authorization: string | undefined,
    required: readonly Scope[],
  ): Principal | Promise<Principal> {
    if (authorization === undefined || authorization === '') {
      throw new UnauthorizedError('Not authenticated', false);
    }
    const match = BEARER.exec(authorization);
    if (match?.[1] === undefined) {
      throw new UnauthorizedError('Could not validate credentials', true);
    }
    // A personal access token is checked against its session like an access token.
    if (looksLikeAccessToken(match[1])) {
      const personal = this.personalTokens.grant(match[1]);
      return personal instanceof Promise
        ? personal.then((found) => this.checkSession(found, required))
        : this.checkSession(personal, required);
    }
    let grant: AccessGrant;
    try {
      grant = this.tokens.verify(match[1]);
    } catch (error) {
      // Not ours: perhaps a trusted issuer's (MYAPI_TRUSTED_ISSUERS).
      const foreign = this.tokens.foreign(match[1], required);
      if (foreign === undefined) throw error;
      return foreign;
    }
    return this.checkSession(grant, required);
  }

  private checkSession(
    grant: AccessGrant | PersonalGrant,
    required: readonly Scope[],
  ): Principal | Promise<Principal> {
    const state = this.sessions.state(grant.sessionId);
    return state instanceof Promise
      ? state.then((loaded) => admit(grant, loaded, required))
      : admit(grant, state, required);
  }
}

function admit(
  grant: AccessGrant | PersonalGrant,
  state: SessionState | undefined,
  required: readonly Scope[],
): Principal {
  if (state === undefined || !state.live || state.userId !== grant.userId) {
    throw new UnauthorizedError('Token has been revoked', true);
  }
  const held = allowedScopes(state.isSuperuser);
  // Usually the role still holds every scope of the token: no new array on the hot path.
  const scopes = grant.scopes.every((scope) => held.includes(scope))
    ? grant.scopes
    : grant.scopes.filter((scope) => held.includes(scope));
  if (!required.every((scope) => scopes.includes(scope))) {
    throw new InsufficientScopeError(required);
  }
  const principal: Principal = {
    userId: grant.userId,
    sessionId: grant.sessionId,
    email: grant.email,
    name: grant.name,
    scopes,
  };
  // Set only for personal access tokens: an access token's principal keeps its one shape.
  if ('personal' in grant) principal.personalAccessToken = true;
  return principal;
}
