/** SessionService: login sessions, refresh-token rotation and the per-request session check. */
import { randomBytes, randomUUID } from 'node:crypto';
import { ReadRouter, type Executor } from '../backend/database.js';
import type { Scope } from '../const.js';
import { auditEvents } from '../models/audit.js';
import { authSessions, refreshTokens } from '../models/sessions.js';
import { AuditCRUD, type AuditEntry, type ClientInfo } from './audit/crud.js';
import { AppService, type ServiceContext } from './base.js';
import { noMetrics, type ServiceMetrics } from './metrics.js';
import {
  CHANNEL,
  RefreshTokenCRUD,
  SessionCRUD,
  type RefreshTokenFound,
  type SessionState,
  type SessionSummary,
  type SessionWithUser,
} from './session_crud.js';
import { hashRefreshToken, newRefreshToken, successorOf } from './tokens.js';

export type { SessionState, SessionSummary, SessionWithUser } from './session_crud.js';

/** Who ends a login, for the audit log: the user themself, an admin, or the CLI (no actor). */
export interface RevokedBy {
  actorId?: number | undefined;
  client?: ClientInfo | undefined;
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
  /** Seconds after its use within which a refresh token may be retried (default 0: never). */
  reuseSeconds?: number;
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
  private readonly stateReads: ReadRouter<SessionCRUD>;
  private readonly refreshTokens: RefreshTokenCRUD;
  private readonly audit: AuditCRUD;
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
    // Session states come from the primary; from a replica only while the primary is down (no
    // revocation can be written then), so reads of the catalogue keep being served.
    this.stateReads = new ReadRouter(
      this.sessions,
      context.replicas,
      (target) => new SessionCRUD(target, authSessions),
    );
    this.refreshTokens = new RefreshTokenCRUD(context, refreshTokens);
    this.audit = new AuditCRUD(context, auditEvents);
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

  /**
   * A new login for the user with these scopes; returns its id and first refresh token. The
   * audit log's `login` event is written with it (`details` says how, e.g. the second factor).
   */
  async start(
    userId: number,
    scopes: readonly Scope[],
    client?: ClientInfo,
    details: Record<string, string> = {},
  ): Promise<{ sessionId: string; refreshToken: string }> {
    const sessionId = randomUUID();
    const refreshToken = newRefreshToken();
    const lifetimeSeconds = this.options.refreshLifetimeSeconds;
    const scope = scopes.join(' ');
    const hash = hashRefreshToken(refreshToken);
    const event: AuditEntry = {
      event: 'login',
      userId,
      client,
      details: { session_id: sessionId, ...details },
    };
    // One statement, one round trip: a login is the hot write path.
    await this.writeTogether([
      this.sessions.pruning(userId),
      this.sessions.creation({ sessionId, userId, scope, lifetimeSeconds, client }),
      this.audit.recording(event),
      this.refreshTokens.creation({ hash, sessionId, lifetimeSeconds }),
    ]);
    return { sessionId, refreshToken };
  }

  /**
   * Exchanges a refresh token for its successor (rotation), detecting a replay. `grant` picks
   * the scopes for the session; when it throws (a scope the login may not have), nothing is
   * spent and the client's refresh token still works.
   */
  async rotate(
    refreshToken: string,
    grant: (session: SessionWithUser) => readonly Scope[],
    client?: ClientInfo,
  ): Promise<RefreshOutcome> {
    const hash = hashRefreshToken(refreshToken);
    const lifetimeSeconds = this.options.refreshLifetimeSeconds;
    const outcome = await this.transaction(async (tx): Promise<RefreshOutcome> => {
      const salt = randomBytes(16).toString('base64url');
      const sessionId = await this.refreshTokens.use(hash, salt, tx);
      if (sessionId === undefined) {
        const known = await this.refreshTokens.find(hash, tx, this.options.reuseSeconds ?? 0);
        if (known?.used !== true) return { kind: 'invalid', reason: 'unknown or expired' };
        const retried = await this.retried(refreshToken, known, grant, tx);
        if (retried !== undefined) return retried;
        // Committed with this transaction: the revocation must stand although the request fails.
        const session = await this.sessions.withUser(known.sessionId, tx);
        const reason = 'refresh token reused';
        const revoked = await this.sessions.revoke({ sessionId: known.sessionId }, reason, tx);
        this.metrics.sessionsRevoked(reason, revoked.length);
        await this.sessions.announce(`s:${known.sessionId}`, tx);
        await this.audit.record(
          {
            event: 'token.refresh_reuse',
            outcome: 'failure',
            reason: 'refresh token reused: login revoked',
            userId: session?.userId,
            client,
            details: { session_id: known.sessionId },
          },
          tx,
        );
        return { kind: 'replayed', sessionId: known.sessionId, userId: session?.userId };
      }
      const session = await this.sessions.withUser(sessionId, tx);
      if (session === undefined || session.revoked) return { kind: 'invalid', reason: 'revoked' };
      if (!session.isActive) return { kind: 'invalid', reason: 'user disabled' };
      const scopes = grant(session);
      const next = successorOf(refreshToken, salt);
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

  /**
   * A used refresh token presented again within the reuse interval, while the successor it was
   * exchanged for is still unused: the client lost the answer and retries, so it gets that same
   * successor (and a new access token) instead of ending the login. Undefined: a replay.
   */
  private async retried(
    refreshToken: string,
    known: RefreshTokenFound,
    grant: (session: SessionWithUser) => readonly Scope[],
    tx: Executor,
  ): Promise<RefreshOutcome | undefined> {
    // The interval is measured by the database's clock: 0 must mean never, whatever the clocks.
    if ((this.options.reuseSeconds ?? 0) === 0 || !known.reusable) return undefined;
    if (known.successorSalt === null) return undefined;
    const successor = successorOf(refreshToken, known.successorSalt);
    if (!(await this.refreshTokens.isUnused(hashRefreshToken(successor), tx))) return undefined;
    const session = await this.sessions.withUser(known.sessionId, tx);
    if (session === undefined || session.revoked) return { kind: 'invalid', reason: 'revoked' };
    if (!session.isActive) return { kind: 'invalid', reason: 'user disabled' };
    return { kind: 'rotated', session, scopes: grant(session), refreshToken: successor };
  }

  /** The session a refresh token belongs to, used or not (revocation). */
  async sessionOfRefreshToken(refreshToken: string): Promise<string | undefined> {
    return (await this.refreshTokens.find(hashRefreshToken(refreshToken)))?.sessionId;
  }

  /**
   * Ends one login (of `userId` only, when given), recording it in the audit log; false when
   * there was no such live login.
   */
  async revokeSession(
    sessionId: string,
    reason: string,
    options: RevokedBy & { userId?: number } = {},
  ): Promise<boolean> {
    const { userId, ...by } = options;
    const revoked = await this.transaction(async (tx) => {
      const [ended] = await this.sessions.revoke({ sessionId, userId }, reason, tx);
      if (ended === undefined) return false;
      this.metrics.sessionsRevoked(reason, 1);
      await this.sessions.announce(`s:${sessionId}`, tx);
      await this.recordRevocations([ended], reason, by, tx);
      return true;
    });
    this.forgetSession(sessionId);
    return revoked;
  }

  /** Ends every login of a user but `keep` (the caller's own); returns how many ended. */
  async revokeOtherSessions(
    userId: number,
    keep: string | undefined,
    reason: string,
    by: RevokedBy = {},
  ): Promise<number> {
    const ended = await this.transaction(async (tx) => {
      const rows = await this.sessions.revoke({ userId, except: keep }, reason, tx);
      await this.announceUserChange(userId, tx);
      await this.recordRevocations(rows, reason, by, tx);
      return rows;
    });
    this.forgetUser(userId);
    return ended.length;
  }

  private async recordRevocations(
    ended: readonly { id: string; userId: number }[],
    reason: string,
    by: RevokedBy,
    tx: Executor,
  ): Promise<void> {
    for (const session of ended) {
      await this.audit.record(
        {
          event: 'session.revoke',
          reason,
          userId: session.userId,
          actorId: by.actorId,
          client: by.client,
          details: { session_id: session.id },
        },
        tx,
      );
    }
  }

  /** A user's live logins, the most recently used first. */
  listSessions(userId: number): Promise<SessionSummary[]> {
    return this.sessions.liveOf(userId);
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
      const state = await this.stateReads.current((crud) => crud.state(sessionId));
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
