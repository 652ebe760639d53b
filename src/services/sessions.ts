import { randomUUID } from 'node:crypto';
import { and, eq, isNotNull, isNull, lt, or, sql, type SQL } from 'drizzle-orm';
import type { Executor } from '../backend/database.js';
import type { Scope } from '../const.js';
import { authSessions, refreshTokens } from '../models/sessions.js';
import { users } from '../models/users.js';
import { AppCRUD, AppService, type ServiceContext } from './base.js';
import { parseScope } from './scopes.js';
import { hashRefreshToken, newRefreshToken } from './tokens.js';

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
  async create(
    session: { sessionId: string; userId: number; scope: string; lifetimeSeconds: number },
    tx?: Executor,
  ): Promise<void> {
    await this.on(tx)
      .insert(authSessions)
      .values({
        session_id: session.sessionId,
        user_id: session.userId,
        scope: session.scope,
        expires_at: inSeconds(session.lifetimeSeconds),
      });
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
      .set({ expires_at: inSeconds(lifetimeSeconds) })
      .where(eq(authSessions.session_id, sessionId));
  }

  /** Revokes one session, or all of a user's; returns the ids that were live until now. */
  async revoke(
    target: { sessionId: string } | { userId: number },
    reason: string,
    tx?: Executor,
  ): Promise<string[]> {
    const which =
      'sessionId' in target
        ? eq(authSessions.session_id, target.sessionId)
        : eq(authSessions.user_id, target.userId);
    const rows = await this.on(tx)
      .update(authSessions)
      .set({ revoked_at: sql`now()`, revoked_reason: reason })
      .where(and(which, isNull(authSessions.revoked_at)))
      .returning({ id: authSessions.session_id });
    return rows.map((row) => row.id);
  }

  /** Tells every process listening that a login or a user changed; sent when `tx` commits. */
  async announce(payload: string, tx?: Executor): Promise<void> {
    await this.on(tx).execute(sql`select pg_notify(${CHANNEL}, ${payload})`);
  }

  /** Forgets a user's dead sessions (expired, or revoked a day ago) and their refresh tokens. */
  async prune(userId: number, tx?: Executor): Promise<void> {
    await this.on(tx)
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

/** Where processes tell each other that logins changed: `s:<session id>` or `u:<user id>`. */
const CHANNEL = 'myapi_sessions';

export class RefreshTokenCRUD extends AppCRUD<typeof refreshTokens> {
  async create(
    token: { hash: string; sessionId: string; lifetimeSeconds: number },
    tx?: Executor,
  ): Promise<void> {
    await this.on(tx)
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
  async use(hash: string, tx: Executor): Promise<string | undefined> {
    const [row] = await tx
      .update(refreshTokens)
      .set({ used_at: sql`now()` })
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

  async find(
    hash: string,
    tx?: Executor,
  ): Promise<{ sessionId: string; used: boolean } | undefined> {
    const [row] = await this.on(tx)
      .select({
        sessionId: refreshTokens.session_id,
        used: isNotNull(refreshTokens.used_at).mapWith(Boolean),
      })
      .from(refreshTokens)
      .where(eq(refreshTokens.token_hash, hash));
    return row;
  }

  async dropExpired(sessionId: string, tx?: Executor): Promise<void> {
    await this.on(tx)
      .delete(refreshTokens)
      .where(
        and(eq(refreshTokens.session_id, sessionId), sql`${refreshTokens.expires_at} <= now()`),
      );
  }
}

/** What presenting a refresh token came to. */
export type RefreshOutcome =
  | { kind: 'rotated'; session: SessionWithUser; scopes: readonly Scope[]; refreshToken: string }
  /** The token was used before: its whole login is now revoked (suspected theft). */
  | { kind: 'replayed'; sessionId: string; userId: number | undefined }
  | { kind: 'invalid'; reason: string };

export interface SessionOptions {
  refreshLifetimeSeconds: number;
  /** How long this process may trust a session's state it read (0: read it on every request). */
  recheckSeconds: number;
  /** Sessions whose state is kept in memory; the least recently checked go first. */
  cacheSize?: number;
}

interface CachedState {
  state: SessionState | undefined;
  checkedAt: number;
}

/**
 * Login sessions: the family of refresh tokens from one password grant, rotated on every use,
 * and the per-request check that an access token's session is still live. The check is served
 * from memory for `recheckSeconds`; changes made through this process are seen at once.
 */
export class SessionService extends AppService {
  private readonly sessions: SessionCRUD;
  private readonly refreshTokens: RefreshTokenCRUD;
  private readonly cache = new Map<string, CachedState>();
  private readonly loading = new Map<string, Promise<SessionState | undefined>>();
  private readonly recheckMs: number;
  private readonly cacheSize: number;
  /** Bumped whenever cached states are dropped: a read that began before must not be kept. */
  private generation = 0;

  constructor(
    context: ServiceContext,
    private readonly options: SessionOptions,
  ) {
    super(context);
    this.sessions = new SessionCRUD(context, authSessions);
    this.refreshTokens = new RefreshTokenCRUD(context, refreshTokens);
    this.recheckMs = options.recheckSeconds * 1000;
    this.cacheSize = options.cacheSize ?? 10_000;
    context.listen?.(CHANNEL, (payload) => {
      this.heard(payload);
    });
  }

  /** Another process changed a login or a user, or we may have missed such news. */
  private heard(payload: string | undefined): void {
    this.generation++;
    if (payload === undefined) this.cache.clear();
    else if (payload.startsWith('s:')) this.forgetSession(payload.slice(2));
    else if (payload.startsWith('u:')) this.forgetUser(Number(payload.slice(2)));
  }

  get refreshLifetimeSeconds(): number {
    return this.options.refreshLifetimeSeconds;
  }

  /** A new login for the user with these scopes; returns its id and first refresh token. */
  start(
    userId: number,
    scopes: readonly Scope[],
  ): Promise<{ sessionId: string; refreshToken: string }> {
    const sessionId = randomUUID();
    const refreshToken = newRefreshToken();
    const lifetimeSeconds = this.options.refreshLifetimeSeconds;
    return this.transaction(async (tx) => {
      await this.sessions.prune(userId, tx);
      await this.sessions.create(
        { sessionId, userId, scope: scopes.join(' '), lifetimeSeconds },
        tx,
      );
      await this.refreshTokens.create(
        { hash: hashRefreshToken(refreshToken), sessionId, lifetimeSeconds },
        tx,
      );
      return { sessionId, refreshToken };
    });
  }

  /**
   * Exchanges a refresh token for its successor (rotation), detecting a replay. `grant` picks
   * the scopes for the session; when it throws (a scope the login may not have), nothing is
   * spent and the client's refresh token still works.
   */
  async rotate(
    refreshToken: string,
    grant: (session: SessionWithUser) => readonly Scope[],
  ): Promise<RefreshOutcome> {
    const hash = hashRefreshToken(refreshToken);
    const lifetimeSeconds = this.options.refreshLifetimeSeconds;
    const outcome = await this.transaction(async (tx): Promise<RefreshOutcome> => {
      const sessionId = await this.refreshTokens.use(hash, tx);
      if (sessionId === undefined) {
        const known = await this.refreshTokens.find(hash, tx);
        if (known?.used !== true) return { kind: 'invalid', reason: 'unknown or expired' };
        // Committed with this transaction: the revocation must stand although the request fails.
        const session = await this.sessions.withUser(known.sessionId, tx);
        await this.sessions.revoke({ sessionId: known.sessionId }, 'refresh token reused', tx);
        await this.sessions.announce(`s:${known.sessionId}`, tx);
        return { kind: 'replayed', sessionId: known.sessionId, userId: session?.userId };
      }
      const session = await this.sessions.withUser(sessionId, tx);
      if (session === undefined || session.revoked) return { kind: 'invalid', reason: 'revoked' };
      if (!session.isActive) return { kind: 'invalid', reason: 'user disabled' };
      const scopes = grant(session);
      const next = newRefreshToken();
      await this.refreshTokens.dropExpired(sessionId, tx);
      await this.refreshTokens.create(
        { hash: hashRefreshToken(next), sessionId, lifetimeSeconds },
        tx,
      );
      await this.sessions.extend(sessionId, lifetimeSeconds, tx);
      return { kind: 'rotated', session, scopes, refreshToken: next };
    });
    if (outcome.kind === 'replayed') this.forgetSession(outcome.sessionId);
    return outcome;
  }

  /** The session a refresh token belongs to, used or not (revocation). */
  async sessionOfRefreshToken(refreshToken: string): Promise<string | undefined> {
    return (await this.refreshTokens.find(hashRefreshToken(refreshToken)))?.sessionId;
  }

  async revokeSession(sessionId: string, reason: string, tx?: Executor): Promise<void> {
    await this.sessions.revoke({ sessionId }, reason, tx);
    await this.sessions.announce(`s:${sessionId}`, tx);
    this.forgetSession(sessionId);
  }

  private forgetSession(sessionId: string): void {
    this.generation++;
    this.cache.delete(sessionId);
  }

  /** Ends every login of a user (password changed, account disabled); returns how many. */
  async revokeUserSessions(userId: number, reason: string, tx?: Executor): Promise<number> {
    const revoked = await this.sessions.revoke({ userId }, reason, tx);
    await this.announceUserChange(userId, tx);
    return revoked.length;
  }

  /**
   * A user's status or role changed: this process forgets what it cached about their logins
   * now, other processes on the same PostgreSQL server when `tx` commits (NOTIFY); any other
   * process within `recheckSeconds`.
   */
  async announceUserChange(userId: number, tx?: Executor): Promise<void> {
    await this.sessions.announce(`u:${userId}`, tx);
    this.forgetUser(userId);
  }

  /** Drops what this process remembers about a user's sessions (role or status changed). */
  forgetUser(userId: number): void {
    this.generation++;
    for (const [sessionId, cached] of this.cache) {
      if (cached.state?.userId === userId) this.cache.delete(sessionId);
    }
  }

  /**
   * The state of a session for the per-request check: from memory while fresh (no promise, no
   * I/O), otherwise one query, shared by every request waiting for the same session.
   */
  state(sessionId: string): SessionState | undefined | Promise<SessionState | undefined> {
    const cached = this.cache.get(sessionId);
    if (cached !== undefined && Date.now() - cached.checkedAt < this.recheckMs) {
      return cached.state;
    }
    let loading = this.loading.get(sessionId);
    if (loading === undefined) {
      loading = this.load(sessionId);
      this.loading.set(sessionId, loading);
    }
    return loading;
  }

  private async load(sessionId: string): Promise<SessionState | undefined> {
    const generation = this.generation;
    try {
      const state = await this.sessions.state(sessionId);
      // A revocation heard while this read was on its way may be newer than what it read.
      if (this.recheckMs > 0 && generation === this.generation) {
        this.cache.delete(sessionId);
        if (this.cache.size >= this.cacheSize) {
          const oldest = this.cache.keys().next().value;
          if (oldest !== undefined) this.cache.delete(oldest);
        }
        this.cache.set(sessionId, { state, checkedAt: Date.now() });
      }
      return state;
    } finally {
      this.loading.delete(sessionId);
    }
  }
}
