/** SessionService: login sessions, refresh-token rotation and the per-request session check. */
import { randomUUID } from 'node:crypto';
import type { Executor } from '../backend/database.js';
import type { Scope } from '../const.js';
import { authSessions, refreshTokens } from '../models/sessions.js';
import { AppService, type ServiceContext } from './base.js';
import { noMetrics, type ServiceMetrics } from './metrics.js';
import {
  CHANNEL,
  RefreshTokenCRUD,
  SessionCRUD,
  type SessionState,
  type SessionWithUser,
} from './session_crud.js';
import { hashRefreshToken, newRefreshToken } from './tokens.js';

export type { SessionState, SessionWithUser } from './session_crud.js';
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
  /** Where revocations are counted (the server's metrics). */
  metrics?: ServiceMetrics;
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
  private readonly metrics: ServiceMetrics;
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
    this.metrics = options.metrics ?? noMetrics;
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
        const reason = 'refresh token reused';
        const revoked = await this.sessions.revoke({ sessionId: known.sessionId }, reason, tx);
        this.metrics.sessionsRevoked(reason, revoked.length);
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
    const revoked = await this.sessions.revoke({ sessionId }, reason, tx);
    this.metrics.sessionsRevoked(reason, revoked.length);
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
    this.metrics.sessionsRevoked(reason, revoked.length);
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
