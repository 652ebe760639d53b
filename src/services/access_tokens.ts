/** AccessTokenService: personal access tokens, their rules, and the bearer check's lookup of one. */
import { randomUUID } from 'node:crypto';
import type { Scope } from '../const.js';
import { InvalidInputError, NotFoundError, UnauthorizedError } from '../exc.js';
import { personalAccessTokens } from '../models/access_tokens.js';
import { authSessions } from '../models/sessions.js';
import {
  ACCESS_TOKEN_DAYS_DEFAULT,
  type AccessToken,
  type AccessTokenCreate,
  type AccessTokenCreated,
} from '../schemas/access_tokens.js';
import {
  AccessTokenCRUD,
  type AccessTokenRow,
  type AccessTokenWithUser,
} from './access_token_crud.js';
import {
  hashAccessToken,
  isWellFormedAccessToken,
  newAccessTokenSecret,
  shownPrefix,
} from './access_token_secret.js';
import { AppService, type ServiceContext } from './base.js';
import { parseScope } from './scopes.js';
import { SessionCRUD } from './session_crud.js';
import type { SessionService } from './sessions.js';
import type { AccessGrant } from './tokens.js';

export interface AccessTokenOptions {
  maxLifetimeDays: number;
  allowNoExpiry: boolean;
}

/** The grant of a personal access token: what an access token's would be, and the token's own id. */
export interface PersonalGrant extends AccessGrant {
  personal: true;
  expiresAtMs: number;
}

const DAY_MS = 86_400_000;
/** A token that never expires still has a session, which lives this long (100 years). */
const NO_EXPIRY_SESSION_SECONDS = 100 * 365 * 86_400;
/** last_used_at is written at most this often per token and process. */
const TOUCH_EVERY_MS = 60_000;
/** How long a token's lookup is reused (its revocation is the session check's, not this). */
const LOOKUP_KEPT_MS = 60_000;
const LOOKUPS_KEPT = 10_000;

const BAD_TOKEN = 'Could not validate credentials';

function publicToken(row: AccessTokenRow): AccessToken {
  return {
    token_id: row.tokenId,
    name: row.name,
    prefix: row.prefix,
    scope: row.scope,
    created_at: row.createdAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    expires_at: row.expiresAt?.toISOString() ?? null,
  };
}

/**
 * Personal access tokens: long-lived, named, scoped bearer tokens a user makes for programs.
 * Each is a login session of its own, so the per-request session check (revocation, a disabled
 * user, a demotion) applies to it exactly as to an access token.
 */
export class AccessTokenService extends AppService {
  private readonly crud: AccessTokenCRUD;
  private readonly sessionRows: SessionCRUD;
  private readonly lookups = new Map<string, { grant: PersonalGrant; readAt: number }>();
  private readonly touched = new Map<string, number>();

  constructor(
    context: ServiceContext,
    private readonly sessions: SessionService,
    private readonly options: AccessTokenOptions,
  ) {
    super(context);
    this.crud = new AccessTokenCRUD(context, personalAccessTokens);
    this.sessionRows = new SessionCRUD(context, authSessions);
  }

  /**
   * A new token for a user, with scopes out of `available` (those of the credentials asking).
   * The secret is in this answer only; the database keeps its hash.
   */
  async create(
    userId: number,
    available: readonly Scope[],
    request: AccessTokenCreate,
  ): Promise<AccessTokenCreated> {
    const name = request.name.trim();
    if (name === '') throw invalid('name', 'name must not be empty');
    const scopes = this.scopesOf(request.scope, available);
    const days = this.lifetimeDays(request.expires_in_days);
    const secret = newAccessTokenSecret();
    const tokenId = randomUUID();
    const expiresAt = days === null ? null : new Date(Date.now() + days * DAY_MS);
    const row = await this.transaction(async (tx) => {
      await this.sessionRows.create(
        {
          sessionId: tokenId,
          userId,
          scope: scopes.join(' '),
          lifetimeSeconds: days === null ? NO_EXPIRY_SESSION_SECONDS : days * 86_400,
        },
        tx,
      );
      return this.crud.insert(
        {
          tokenId,
          userId,
          name,
          hash: hashAccessToken(secret),
          prefix: shownPrefix(secret),
          scope: scopes.join(' '),
          expiresAt,
        },
        tx,
      );
    });
    return { ...publicToken(row), token: secret };
  }

  private scopesOf(requested: string | undefined, available: readonly Scope[]): readonly Scope[] {
    if (requested === undefined || requested.trim() === '') {
      if (available.length === 0) throw invalid('scope', 'no scope to grant');
      return available;
    }
    const asked = parseScope(requested);
    if (asked === undefined) {
      throw invalid('scope', `unknown scope in '${requested}'`);
    }
    const refused = asked.filter((scope) => !available.includes(scope));
    if (refused.length > 0) {
      throw invalid('scope', `the scope ${refused.join(' ')} is not yours to grant`);
    }
    return asked;
  }

  private lifetimeDays(asked: number | null | undefined): number | null {
    const max = this.options.maxLifetimeDays;
    if (asked === null) {
      if (this.options.allowNoExpiry) return null;
      throw invalid(
        'expires_in_days',
        'tokens must expire on this server (MYAPI_ACCESS_TOKENS__ALLOW_NO_EXPIRY is off)',
      );
    }
    if (asked === undefined) return Math.min(ACCESS_TOKEN_DAYS_DEFAULT, max);
    if (asked > max) {
      throw invalid('expires_in_days', `expires_in_days must be at most ${max} on this server`);
    }
    return asked;
  }

  /** A user's tokens that were not revoked, newest first. */
  async list(userId: number): Promise<AccessToken[]> {
    return (await this.crud.listLive(userId)).map(publicToken);
  }

  /** Revokes one of a user's tokens: it stops working at once here, elsewhere on the next check. */
  async revoke(userId: number, tokenId: string): Promise<void> {
    if (!(await this.crud.findLive(userId, tokenId))) {
      throw new NotFoundError(`Token ${tokenId} not found`);
    }
    await this.sessions.revokeSession(tokenId, 'personal access token revoked');
  }

  /** RFC 7009 at /token/revoke: whoever holds a token may revoke it (a leaked one, say). */
  async revokeBySecret(secret: string): Promise<void> {
    const found = await this.find(secret);
    if (found !== undefined && !found.revoked) {
      await this.sessions.revokeSession(found.tokenId, 'revoked by client');
    }
  }

  /** The token with its user and state, read now; undefined for a malformed or unknown one. */
  async find(secret: string): Promise<AccessTokenWithUser | undefined> {
    if (!isWellFormedAccessToken(secret)) return undefined;
    return this.crud.byHash(hashAccessToken(secret));
  }

  /**
   * What a token grants, for the bearer check; the session check (revoked, user disabled or
   * demoted) comes after, as for an access token. A malformed token is refused without a query;
   * a known one is served from memory for a minute.
   */
  grant(secret: string): PersonalGrant | Promise<PersonalGrant> {
    if (!isWellFormedAccessToken(secret)) throw new UnauthorizedError(BAD_TOKEN, true);
    const hash = hashAccessToken(secret);
    const known = this.lookups.get(hash);
    if (known !== undefined && Date.now() - known.readAt < LOOKUP_KEPT_MS) {
      return this.admitted(known.grant);
    }
    return this.crud.byHash(hash).then((found) => {
      if (found === undefined) throw new UnauthorizedError(BAD_TOKEN, true);
      const grant: PersonalGrant = Object.freeze({
        personal: true,
        userId: found.userId,
        sessionId: found.tokenId,
        email: found.email,
        name: found.name,
        scopes: Object.freeze(parseScope(found.scope) ?? []),
        expiresAtMs: found.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY,
      });
      this.lookups.delete(hash);
      if (this.lookups.size >= LOOKUPS_KEPT) {
        const oldest = this.lookups.keys().next();
        if (oldest.done !== true) this.lookups.delete(oldest.value);
      }
      this.lookups.set(hash, { grant, readAt: Date.now() });
      return this.admitted(grant);
    });
  }

  private admitted(grant: PersonalGrant): PersonalGrant {
    const now = Date.now();
    if (now >= grant.expiresAtMs) throw new UnauthorizedError('Token has expired', true);
    const last = this.touched.get(grant.sessionId);
    if (last === undefined || now - last >= TOUCH_EVERY_MS) {
      if (this.touched.size >= LOOKUPS_KEPT) this.touched.clear();
      this.touched.set(grant.sessionId, now);
      // Not awaited: the request does not wait for a bookkeeping write, nor fail with it.
      this.crud.touch(grant.sessionId).catch(() => {
        this.touched.delete(grant.sessionId);
      });
    }
    return grant;
  }
}

/** A 422 naming the body field at fault. */
function invalid(name: string, message: string): InvalidInputError {
  return new InvalidInputError(message, [{ field: `body.${name}`, message }]);
}
