/** AuthService: the password and refresh grants, logout, and the bearer check of every request. */
import type { Scope } from '../const.js';
import { InFlight } from '../backend/in_flight.js';
import { OAuthError, tooManyFailedLogins, type AppError } from '../exc.js';
import type { Principal, RevokeRequest, Token, TokenRequest } from '../schemas/auth.js';
import { looksLikeAccessToken } from './access_token_secret.js';
import type { AccessTokenService } from './access_tokens.js';
import { BearerCheck } from './bearer.js';
import { auditEvents } from '../models/audit.js';
import { AuditCRUD, type AuditEntry, type ClientInfo } from './audit/crud.js';
import { AppService, type ServiceContext } from './base.js';
import { type MfaService, type SecondFactor } from './mfa/index.js';
import type { PasswordHasher } from './passwords.js';
import { allowedScopes, grantScopes } from './scopes.js';
import type { SessionService } from './sessions.js';
import { noMetrics, type ServiceMetrics } from './metrics.js';
import type { LoginThrottle } from './throttle.js';
import type { AccessGrant, TokenCodec } from './tokens.js';
import { WrongPasswordError, type UserService } from './users.js';

const INVALID_GRANT = 'Incorrect username or password';
/** Auth0's grant types of the second step of a login (an mfa_token and a code). */
export const MFA_OTP_GRANT = 'http://auth0.com/oauth/grant-type/mfa-otp';
export const MFA_RECOVERY_GRANT = 'http://auth0.com/oauth/grant-type/mfa-recovery-code';

const UNVERIFIED =
  'Confirm your email address first: use the link mailed to you, or ask for a new one';
/** A JWT has three dot-separated parts; our refresh tokens are one base64url string. */
const LOOKS_LIKE_JWT = /^[^.]+\.[^.]+\.[^.]+$/;

export type { ClientInfo } from './audit/crud.js';

/**
 * The token endpoint (password, refresh and MFA grants, revocation), the password change, and
 * the bearer check every protected route runs (BearerCheck).
 */
export class AuthService extends AppService {
  private readonly audit: AuditCRUD;
  private readonly bearer: BearerCheck;
  /** Password logins from the request to the session they start: a stopping server awaits them. */
  private readonly logins = new InFlight();

  constructor(
    context: ServiceContext,
    private readonly users: UserService,
    private readonly hasher: PasswordHasher,
    private readonly tokens: TokenCodec,
    private readonly sessions: SessionService,
    private readonly throttle: LoginThrottle,
    private readonly personalTokens: AccessTokenService,
    private readonly mfa: MfaService,
    private readonly options: { requireVerifiedEmail?: boolean } = {},
    private readonly metrics: ServiceMetrics = noMetrics,
  ) {
    super(context);
    this.audit = new AuditCRUD(context, auditEvents);
    this.bearer = new BearerCheck(tokens, sessions, personalTokens);
  }

  /** A refusal changes nothing, so its audit row stands alone. */
  private refused(entry: Omit<AuditEntry, 'outcome'>): Promise<void> {
    return this.audit.record({ ...entry, outcome: 'failure' });
  }

  /** 429 slow_down, recorded as a throttle refusal. */
  private async throttled(
    retryAfterSeconds: number,
    client: ClientInfo,
    details: Record<string, string | number>,
    atTokenEndpoint = true,
  ): Promise<AppError> {
    await this.refused({
      event: 'login.throttled',
      reason: 'throttle',
      client,
      details: { retry_after_seconds: retryAfterSeconds, ...details },
    });
    return tooManyFailedLogins(retryAfterSeconds, atTokenEndpoint);
  }

  token(request: TokenRequest, client: ClientInfo): Promise<Token> {
    switch (request.grant_type ?? 'password') {
      case 'password':
        return this.logins.track(this.passwordGrant(request, client));
      case 'refresh_token':
        return this.refreshGrant(request, client);
      case MFA_OTP_GRANT:
      case MFA_RECOVERY_GRANT:
        return this.mfaGrant(request, client);
      default:
        throw new OAuthError(
          400,
          'unsupported_grant_type',
          `grant_type '${request.grant_type ?? ''}' is not supported; use 'password', ` +
            `'refresh_token', '${MFA_OTP_GRANT}' or '${MFA_RECOVERY_GRANT}'`,
        );
    }
  }

  /**
   * Resolves once every password login in flight has finished (its hash, its throttle verdict, its
   * session), or after `withinMs`: a server stops through this before it closes hashing and the
   * pool, so a login whose client has gone still ends cleanly instead of failing half-way.
   */
  settled(withinMs: number): Promise<void> {
    return this.logins.settled(withinMs);
  }

  /**
   * Self-service password change. The current password is a password check like a login's, so
   * the same throttle guards it: a stolen access token is no licence to guess.
   */
  async changePassword(
    principal: Principal,
    change: { current: string; next: string },
    client: ClientInfo,
  ): Promise<void> {
    this.hasher.refuseWhenFull();
    const decision = await this.throttle.begin(principal.email.toLowerCase(), client.address);
    if (!decision.allowed) {
      this.metrics.throttleRefused();
      const details = { during: 'password.change', user: principal.userId };
      throw await this.throttled(decision.retryAfterSeconds, client, details, false);
    }
    const verdict = await this.throttle.settle(decision.attempt, async () => {
      try {
        await this.users.setPassword(principal.userId, change.next, {
          current: change.current,
          enforcePolicy: true,
          actorId: principal.userId,
          client,
        });
        return { ok: true, wrong: undefined };
      } catch (error) {
        if (error instanceof WrongPasswordError) return { ok: false, wrong: error };
        throw error;
      }
    });
    if (verdict.wrong !== undefined) {
      await this.refused({
        event: 'password.change',
        reason: 'wrong_password',
        userId: principal.userId,
        actorId: principal.userId,
        client,
      });
      throw verdict.wrong;
    }
  }

  private async passwordGrant(request: TokenRequest, client: ClientInfo): Promise<Token> {
    const username = request.username?.trim() ?? '';
    const password = request.password ?? '';
    if (username === '' || password === '') {
      throw new OAuthError(400, 'invalid_request', 'username and password are required');
    }
    try {
      return await this.checkPassword(username, password, request, client);
    } catch (error) {
      // The refusals of the rules are counted where they are raised; the rest is a 503.
      if (!(error instanceof OAuthError)) this.metrics.login('unavailable');
      throw error;
    }
  }

  private async checkPassword(
    username: string,
    password: string,
    request: TokenRequest,
    client: ClientInfo,
  ): Promise<Token> {
    this.hasher.refuseWhenFull();
    const account = username.toLowerCase();
    const decision = await this.throttle.begin(account, client.address);
    if (!decision.allowed) {
      this.metrics.throttleRefused();
      this.metrics.login('throttled');
      throw await this.throttled(decision.retryAfterSeconds, client, { username: account });
    }
    // The throttle counts the verdict, or takes the attempt back when the check itself fails.
    const { user, ok, needsRehash } = await this.throttle.settle(decision.attempt, async () => {
      const found = await this.users.findForLogin(username);
      if (found === undefined) {
        await this.hasher.verifyNothing(password);
        return { user: found, ok: false, needsRehash: false };
      }
      return { user: found, ...(await this.hasher.verify(found.hashed_password, password)) };
    });
    if (user === undefined || !ok) {
      this.metrics.login('invalid_credentials');
      // Both cases write one row: the same work whether or not the account exists.
      await this.refused({
        event: 'login',
        reason: user === undefined ? 'unknown_user' : 'wrong_password',
        userId: user?.user_id,
        client,
        details: { username: account },
      });
      throw new OAuthError(401, 'invalid_grant', INVALID_GRANT);
    }
    // Only after the right password: a disabled account is no secret from its owner.
    if (!user.is_active) {
      this.metrics.login('disabled');
      await this.refused({ event: 'login', reason: 'disabled', userId: user.user_id, client });
      throw new OAuthError(401, 'invalid_grant', 'This account is disabled');
    }
    if (this.options.requireVerifiedEmail === true && user.email_verified_at === null) {
      await this.refused({ event: 'login', reason: 'unverified', userId: user.user_id, client });
      throw new OAuthError(401, 'invalid_grant', UNVERIFIED);
    }
    const scopes = grantScopes(request.scope, allowedScopes(user.is_superuser));
    if (needsRehash) {
      await this.users.replacePasswordHash(user.user_id, await this.hasher.hash(password));
    }
    if (await this.mfa.enrolled(user.user_id)) {
      const mfaToken = await this.mfa.challenge(user.user_id, scopes.join(' '), client);
      throw new OAuthError(400, 'mfa_required', 'Multi-factor authentication required', {
        extra: { mfa_token: mfaToken },
      });
    }
    const { sessionId, refreshToken } = await this.sessions.start(user.user_id, scopes, client);
    this.metrics.login('success');
    return this.issue(
      { userId: user.user_id, email: user.email, name: user.name, sessionId, scopes },
      refreshToken,
    );
  }

  /**
   * The second step of a login with two-factor authentication (Auth0's grant types): the
   * mfa_token from the mfa_required answer and a TOTP code (`otp`) or a recovery code.
   */
  private async mfaGrant(request: TokenRequest, client: ClientInfo): Promise<Token> {
    const mfaToken = request.mfa_token ?? '';
    const factor: SecondFactor | undefined =
      request.grant_type === MFA_OTP_GRANT
        ? request.otp === undefined
          ? undefined
          : { otp: request.otp.trim() }
        : request.recovery_code === undefined
          ? undefined
          : { recoveryCode: request.recovery_code };
    if (mfaToken === '' || factor === undefined) {
      throw new OAuthError(
        400,
        'invalid_request',
        'mfa_token and otp (or recovery_code) are required',
      );
    }
    const { userId, scope, method } = await this.mfa.complete(mfaToken, factor, client);
    const user = await this.users.get(userId);
    if (!user.is_active) throw new OAuthError(401, 'invalid_grant', 'This account is disabled');
    // The role may have changed since the password step: never more than it allows now.
    const scopes = grantScopes(scope, allowedScopes(user.is_superuser));
    const { sessionId, refreshToken } = await this.sessions.start(userId, scopes, client, {
      mfa: method,
    });
    return this.issue(
      { userId, email: user.email, name: user.name, sessionId, scopes },
      refreshToken,
    );
  }

  private async refreshGrant(request: TokenRequest, client: ClientInfo): Promise<Token> {
    const presented = request.refresh_token ?? '';
    if (presented === '') {
      throw new OAuthError(400, 'invalid_request', 'refresh_token is required');
    }
    // The role may have changed since the login: never grant more than it allows now.
    const outcome = await this.sessions.rotate(
      presented,
      (session) =>
        grantScopes(
          request.scope,
          session.scopes.filter((scope) => allowedScopes(session.isSuperuser).includes(scope)),
        ),
      client,
    );
    if (outcome.kind === 'replayed') {
      this.metrics.refreshTokenReused();
      throw new OAuthError(400, 'invalid_grant', 'Refresh token has already been used', {
        alert: {
          message: 'refresh token reused: login revoked (suspected token theft)',
          fields: {
            event: 'refresh_token_reuse',
            sessionId: outcome.sessionId,
            ...(outcome.userId === undefined ? {} : { userId: outcome.userId }),
          },
        },
      });
    }
    if (outcome.kind === 'invalid') {
      throw new OAuthError(400, 'invalid_grant', 'Refresh token is invalid, expired or revoked');
    }
    const { session, scopes } = outcome;
    return this.issue(
      {
        userId: session.userId,
        email: session.email,
        name: session.name,
        sessionId: session.sessionId,
        scopes,
      },
      outcome.refreshToken,
    );
  }

  private issue(grant: AccessGrant, refreshToken: string): Token {
    const { token, expiresIn } = this.tokens.issue(grant);
    return {
      access_token: token,
      token_type: 'bearer',
      expires_in: expiresIn,
      refresh_token: refreshToken,
      scope: grant.scopes.join(' '),
    };
  }

  /**
   * RFC 7009: ends the login the token belongs to, whichever kind it is (the hint only saves a
   * lookup). Unknown, foreign or already revoked tokens are not an error: the result is the same.
   */
  async revoke(request: RevokeRequest, client?: ClientInfo): Promise<void> {
    const token = request.token.trim();
    if (looksLikeAccessToken(token)) {
      await this.personalTokens.revokeBySecret(token);
      return;
    }
    const sessionId = LOOKS_LIKE_JWT.test(token)
      ? this.tokens.sessionOf(token)
      : await this.sessions.sessionOfRefreshToken(token);
    if (sessionId !== undefined) {
      await this.sessions.revokeSession(sessionId, 'revoked by client', { client });
    }
  }

  /** The principal of a bearer header holding every scope in `required` (see BearerCheck). */
  authenticate(
    authorization: string | undefined,
    required: readonly Scope[],
  ): Principal | Promise<Principal> {
    return this.bearer.authenticate(authorization, required);
  }
}
