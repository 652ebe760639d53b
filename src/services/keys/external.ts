/**
 * Access tokens of other issuers (MYAPI_TRUSTED_ISSUERS): verified against the issuer's JWK set
 * (fetched, cached, fetched again on an unknown kid at most once per cooldown), mapped to a local
 * user, and granted no more than the scopes the issuer may carry, the token's and the user's.
 */
import { createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload } from 'jose';
import type { TrustedIssuer } from '../../backend/trusted_issuers.js';
import type { Scope } from '../../const.js';
import { InsufficientScopeError, NotFoundError, UnauthorizedError } from '../../exc.js';
import type { Principal } from '../../schemas/auth.js';
import { allowedScopes, parseScope } from '../scopes.js';
import type { UserService } from '../users.js';

/** What the issuer's token names here. */
export interface LocalUser {
  userId: number;
  email: string;
  name: string;
  isActive: boolean;
  isSuperuser: boolean;
}

export type FindUser = (by: 'email' | 'id', value: string) => Promise<LocalUser | undefined>;

interface Entry {
  config: TrustedIssuer;
  keys: ReturnType<typeof createRemoteJWKSet>;
}

/** Principals of foreign tokens name no login session of ours. */
const NO_SESSION = '';

export class ExternalIssuers {
  private readonly byIssuer = new Map<string, Entry>();

  constructor(
    issuers: readonly TrustedIssuer[],
    private readonly findUser: FindUser,
  ) {
    for (const config of issuers) {
      this.byIssuer.set(config.issuer, {
        config,
        keys: createRemoteJWKSet(new URL(config.jwks_uri), {
          cooldownDuration: config.jwks_cooldown_seconds * 1000,
          cacheMaxAge: config.jwks_max_age_seconds * 1000,
        }),
      });
    }
  }

  get size(): number {
    return this.byIssuer.size;
  }

  /**
   * The principal of a token from a trusted issuer, holding every scope in `required`; undefined
   * when the token does not claim to come from one (so it is refused as ours would be). Routes
   * that require no scope (the caller's own account) take only our own logins.
   */
  authenticate(token: string, required: readonly Scope[]): Promise<Principal> | undefined {
    let claimed: JWTPayload;
    try {
      claimed = decodeJwt(token);
    } catch {
      return undefined;
    }
    const entry = typeof claimed.iss === 'string' ? this.byIssuer.get(claimed.iss) : undefined;
    if (entry === undefined) return undefined;
    return this.admit(entry, token, required);
  }

  private async admit(entry: Entry, token: string, required: readonly Scope[]): Promise<Principal> {
    const { config } = entry;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, entry.keys, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: config.algorithms,
        requiredClaims: ['exp', 'iss', 'aud', 'sub'],
      }));
    } catch (error) {
      const expired = error instanceof errors.JWTExpired;
      throw new UnauthorizedError(
        expired ? 'Token has expired' : 'Could not validate credentials',
        true,
        error,
      );
    }
    const user = await this.userOf(config, payload);
    if (user?.isActive !== true)
      throw new UnauthorizedError('Could not validate credentials', true);
    if (required.length === 0) {
      throw new UnauthorizedError('This route needs a login of this server', true);
    }
    const claimedScopes =
      typeof payload.scope === 'string' ? (parseScope(payload.scope) ?? []) : [];
    const held = allowedScopes(user.isSuperuser);
    const mayCarry: readonly string[] = config.scopes;
    const scopes = claimedScopes.filter(
      (scope) => mayCarry.includes(scope) && held.includes(scope),
    );
    if (!required.every((scope) => scopes.includes(scope)))
      throw new InsufficientScopeError(required);
    return {
      userId: user.userId,
      sessionId: NO_SESSION,
      email: user.email,
      name: user.name,
      scopes,
    };
  }

  private userOf(config: TrustedIssuer, payload: JWTPayload): Promise<LocalUser | undefined> {
    if (config.user_claim === 'sub') {
      const id = payload.sub ?? '';
      return /^[1-9][0-9]{0,9}$/.test(id) ? this.findUser('id', id) : Promise.resolve(undefined);
    }
    const email: unknown = payload.email;
    return typeof email === 'string' && email !== ''
      ? this.findUser('email', email)
      : Promise.resolve(undefined);
  }
}

/** Looks a foreign token's user up through the users service; unknown is undefined. */
export function localUserFinder(users: UserService): FindUser {
  return async (by, value) => {
    try {
      const user = by === 'id' ? await users.get(Number(value)) : await users.getByEmail(value);
      return {
        userId: user.user_id,
        email: user.email,
        name: user.name,
        isActive: user.is_active,
        isSuperuser: user.is_superuser,
      };
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  };
}
