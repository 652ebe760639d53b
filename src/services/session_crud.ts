/** The queries of login sessions and their refresh tokens (SessionCRUD, RefreshTokenCRUD). */
import { and, asc, desc, eq, isNotNull, isNull, lt, ne, or, sql, type SQL } from 'drizzle-orm';
import type { Executor } from '../backend/database.js';
import type { Scope } from '../const.js';
import { authSessions, refreshTokens } from '../models/sessions.js';
import { users } from '../models/users.js';
import { AppCRUD } from './base.js';
import type { ClientInfo } from './audit/crud.js';
import { parseScope } from './scopes.js';

/** A live login as its owner sees it. */
export interface SessionSummary {
  session_id: string;
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
  client_address: string | null;
  user_agent: string | null;
  scope: string;
}

/** What the per-request check needs to know about a session and its user. */
export interface SessionState {
  userId: number;
  /** Revoked, or its user disabled or deleted: no token of it works. */
  live: boolean;
  isSuperuser: boolean;
}

/** A session with the user it belongs to, as a refresh needs it. */
export interface SessionWithUser {
  sessionId: string;
  scopes: readonly Scope[];
  userId: number;
  email: string;
  name: string;
  isActive: boolean;
  isSuperuser: boolean;
  revoked: boolean;
}

const inSeconds = (seconds: number): SQL => sql`now() + make_interval(secs => ${seconds})`;

export class SessionCRUD extends AppCRUD<typeof authSessions> {
  async create(session: Parameters<SessionCRUD['creation']>[0], tx?: Executor): Promise<void> {
    await this.creation(session, tx);
  }

  /** The insert of a new session, not yet run: await it, or run it with others (writesTogether). */
  creation(
    session: {
      sessionId: string;
      userId: number;
      scope: string;
      lifetimeSeconds: number;
      client?: ClientInfo | undefined;
    },
    tx?: Executor,
  ) {
    return this.on(tx)
      .insert(authSessions)
      .values({
        session_id: session.sessionId,
        user_id: session.userId,
        scope: session.scope,
        expires_at: inSeconds(session.lifetimeSeconds),
        client_address: session.client?.address.slice(0, 256) ?? null,
        user_agent: session.client?.userAgent?.slice(0, 256) ?? null,
      });
  }

  /** A user's live logins (neither revoked nor expired), the most recently used first. */
  async liveOf(userId: number, tx?: Executor): Promise<SessionSummary[]> {
    const rows = await this.on(tx)
      .select({
        session_id: authSessions.session_id,
        created_at: authSessions.created_at,
        last_used_at: authSessions.last_used_at,
        expires_at: authSessions.expires_at,
        client_address: authSessions.client_address,
        user_agent: authSessions.user_agent,
        scope: authSessions.scope,
      })
      .from(authSessions)
      .where(
        and(
          eq(authSessions.user_id, userId),
          isNull(authSessions.revoked_at),
          sql`${authSessions.expires_at} > now()`,
        ),
      )
      .orderBy(desc(authSessions.last_used_at), asc(authSessions.session_id));
    return rows;
  }

  async state(sessionId: string, tx?: Executor): Promise<SessionState | undefined> {
    const session = await this.withUser(sessionId, tx);
    if (session === undefined) return undefined;
    return {
      userId: session.userId,
      live: !session.revoked && session.isActive,
      isSuperuser: session.isSuperuser,
    };
  }

  /**
   * The session and its user. No lock: a revocation racing a refresh leaves the new tokens in a
   * revoked session, which every later check refuses.
   */
  async withUser(sessionId: string, tx?: Executor): Promise<SessionWithUser | undefined> {
    const [row] = await this.on(tx)
      .select({
        sessionId: authSessions.session_id,
        scope: authSessions.scope,
        revoked: isNotNull(authSessions.revoked_at).mapWith(Boolean),
        userId: users.user_id,
        email: users.email,
        name: users.name,
        isActive: users.is_active,
        isSuperuser: users.is_superuser,
      })
      .from(authSessions)
      .innerJoin(users, eq(users.user_id, authSessions.user_id))
      .where(eq(authSessions.session_id, sessionId));
    if (row === undefined) return undefined;
    const { scope, ...rest } = row;
    return { ...rest, scopes: parseScope(scope) ?? [] };
  }

  async extend(sessionId: string, lifetimeSeconds: number, tx?: Executor): Promise<void> {
    await this.on(tx)
      .update(authSessions)
      .set({ expires_at: inSeconds(lifetimeSeconds), last_used_at: sql`now()` })
      .where(eq(authSessions.session_id, sessionId));
  }

  /**
   * Revokes one session (of one user, when `userId` is given too), or all of a user's but
   * `except`; returns the sessions that were live until now.
   */
  async revoke(
    target: { sessionId: string; userId?: number } | { userId: number; except?: string },
    reason: string,
    tx?: Executor,
  ): Promise<{ id: string; userId: number }[]> {
    const which =
      'sessionId' in target
        ? and(
            eq(authSessions.session_id, target.sessionId),
            target.userId === undefined ? undefined : eq(authSessions.user_id, target.userId),
          )
        : and(
            eq(authSessions.user_id, target.userId),
            target.except === undefined ? undefined : ne(authSessions.session_id, target.except),
          );
    return this.on(tx)
      .update(authSessions)
      .set({ revoked_at: sql`now()`, revoked_reason: reason })
      .where(and(which, isNull(authSessions.revoked_at)))
      .returning({ id: authSessions.session_id, userId: authSessions.user_id });
  }

  /** Tells every process listening that a login or a user changed; sent when `tx` commits. */
  async announce(payload: string, tx?: Executor): Promise<void> {
    await this.on(tx).execute(sql`select pg_notify(${CHANNEL}, ${payload})`);
  }

  /**
   * Forgets a user's dead sessions (expired, or revoked a day ago) and their refresh tokens: the
   * delete, not yet run (see `creation`).
   */
  pruning(userId: number, tx?: Executor) {
    return this.on(tx)
      .delete(authSessions)
      .where(
        and(
          eq(authSessions.user_id, userId),
          or(
            lt(authSessions.expires_at, sql`now()`),
            lt(authSessions.revoked_at, sql`now() - interval '1 day'`),
          ),
        ),
      );
  }
}

/** A refresh token as the replay check sees it. */
export interface RefreshTokenFound {
  sessionId: string;
  used: boolean;
  reusable: boolean;
  successorSalt: string | null;
}

/** Where processes tell each other that logins changed: `s:<session id>` or `u:<user id>`. */
export const CHANNEL = 'myapi_sessions';

export class RefreshTokenCRUD extends AppCRUD<typeof refreshTokens> {
  async create(
    token: { hash: string; sessionId: string; lifetimeSeconds: number },
    tx?: Executor,
  ): Promise<void> {
    await this.creation(token, tx);
  }

  /** The insert of a refresh token, not yet run (see SessionCRUD.creation). */
  creation(token: { hash: string; sessionId: string; lifetimeSeconds: number }, tx?: Executor) {
    return this.on(tx)
      .insert(refreshTokens)
      .values({
        token_hash: token.hash,
        session_id: token.sessionId,
        expires_at: inSeconds(token.lifetimeSeconds),
      });
  }

  /**
   * Marks an unused, unexpired token used and returns its session. The row lock makes this the
   * single winner when the same token is presented twice at once.
   */
  async use(hash: string, successorSalt: string, tx: Executor): Promise<string | undefined> {
    const [row] = await tx
      .update(refreshTokens)
      .set({ used_at: sql`now()`, successor_salt: successorSalt })
      .where(
        and(
          eq(refreshTokens.token_hash, hash),
          isNull(refreshTokens.used_at),
          sql`${refreshTokens.expires_at} > now()`,
        ),
      )
      .returning({ sessionId: refreshTokens.session_id });
    return row?.sessionId;
  }

  /**
   * A token, used or not. `reusable`: used less than `reuseSeconds` ago, so a retry may get its
   * successor (derived from `successorSalt`) again. The row lock waits for a use in progress.
   */
  async find(
    hash: string,
    tx?: Executor,
    reuseSeconds = 0,
  ): Promise<RefreshTokenFound | undefined> {
    const [row] = await this.on(tx)
      .select({
        sessionId: refreshTokens.session_id,
        used: isNotNull(refreshTokens.used_at).mapWith(Boolean),
        reusable:
          sql`coalesce(${refreshTokens.used_at} > now() - make_interval(secs => ${reuseSeconds}), false)`.mapWith(
            Boolean,
          ),
        successorSalt: refreshTokens.successor_salt,
      })
      .from(refreshTokens)
      .where(eq(refreshTokens.token_hash, hash));
    return row;
  }

  /** Whether the token was issued, is unused and has not expired. */
  async isUnused(hash: string, tx?: Executor): Promise<boolean> {
    const [row] = await this.on(tx)
      .select({ hash: refreshTokens.token_hash })
      .from(refreshTokens)
      .where(
        and(
          eq(refreshTokens.token_hash, hash),
          isNull(refreshTokens.used_at),
          sql`${refreshTokens.expires_at} > now()`,
        ),
      );
    return row !== undefined;
  }

  async dropExpired(sessionId: string, tx?: Executor): Promise<void> {
    await this.on(tx)
      .delete(refreshTokens)
      .where(
        and(eq(refreshTokens.session_id, sessionId), sql`${refreshTokens.expires_at} <= now()`),
      );
  }
}
