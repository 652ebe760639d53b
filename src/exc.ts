// The errors services raise, each with its HTTP status; routers/errors.ts turns them into answers.

/** RFC 9457's media type for problem documents: what every error is sent as by default. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** RFC 6749 section 5.2: an OAuth2 client takes the token endpoint's errors as plain JSON only. */
export const OAUTH_ERROR_CONTENT_TYPE = 'application/json';

/**
 * Errors a service may raise. Each knows its HTTP status, so routers never translate them, and the
 * one error handler (routers/errors.ts) turns every error into an RFC 9457 problem document, sent
 * as the error's `contentType` (problem+json unless the error's protocol requires another).
 */
export class AppError extends Error {
  readonly status: number;
  readonly contentType: string;
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;
  /** A security event (token replay, say) that operators must see: logged at warn, not info. */
  readonly alert: SecurityAlert | undefined;

  constructor(
    status: number,
    detail: string,
    options: {
      headers?: Record<string, string>;
      extra?: Record<string, unknown>;
      cause?: unknown;
      alert?: SecurityAlert;
      contentType?: string;
    } = {},
  ) {
    super(detail, { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.contentType = options.contentType ?? PROBLEM_CONTENT_TYPE;
    this.headers = options.headers ?? {};
    this.extra = options.extra ?? {};
    this.alert = options.alert;
  }
}

/** What a security alert logs: a message and identifiers, never a token or a password. */
export interface SecurityAlert {
  message: string;
  fields: Record<string, string | number>;
}

export class NotFoundError extends AppError {
  constructor(detail: string) {
    super(404, detail);
  }
}

export class ConflictError extends AppError {
  constructor(detail: string, cause?: unknown) {
    super(409, detail, { cause });
  }
}

/** A conditional write whose If-Match no longer matches: someone changed the resource since. */
export class PreconditionFailedError extends AppError {
  constructor(detail: string, currentEtag?: string) {
    super(412, detail, { headers: currentEtag === undefined ? {} : { etag: currentEtag } });
  }
}

/** A write that must be conditional (RFC 6585 section 3), so it cannot lose a concurrent one. */
export class PreconditionRequiredError extends AppError {
  constructor(detail: string) {
    super(428, detail);
  }
}

export class InvalidInputError extends AppError {
  constructor(detail: string, errors: readonly FieldError[] = []) {
    super(422, detail, { extra: errors.length > 0 ? { errors } : {} });
  }
}

/** A missing, malformed, expired or forged bearer token (RFC 6750 section 3). */
export class UnauthorizedError extends AppError {
  constructor(detail: string, tokenWasSent: boolean, cause?: unknown) {
    super(401, detail, {
      cause,
      headers: {
        'www-authenticate': tokenWasSent
          ? `Bearer error="invalid_token", error_description="${detail}"`
          : 'Bearer',
      },
    });
  }
}

/**
 * A valid token without a scope the route needs (RFC 6750 section 3.1): 403, and the header
 * names every scope the route requires so a client knows what to ask for.
 */
export class InsufficientScopeError extends AppError {
  constructor(required: readonly string[]) {
    const scope = required.join(' ');
    const detail = `This request needs the scope ${scope}`;
    super(403, detail, {
      extra: { error: 'insufficient_scope', scope },
      headers: {
        'www-authenticate': `Bearer error="insufficient_scope", scope="${scope}", error_description="${detail}"`,
      },
    });
  }
}

export class ForbiddenError extends AppError {
  constructor(detail: string) {
    super(403, detail);
  }
}

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_grant'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  // RFC 8628's registered code for "too fast": the brute-force throttle's answer, with Retry-After.
  | 'slow_down'
  // Auth0's code for "the password was right, now the second factor" (with an mfa_token).
  | 'mfa_required';

/**
 * Token endpoint errors (RFC 6749 section 5.2; RFC 7009 and RFC 7662 refer to it), carrying the
 * standard `error` code. The body keeps the problem document's members (FastAPI clients read
 * `detail`), but the media type is `application/json`, the only one OAuth2 clients accept.
 */
export class OAuthError extends AppError {
  constructor(
    status: 400 | 401 | 429,
    error: OAuthErrorCode,
    detail: string,
    options: {
      retryAfterSeconds?: number;
      alert?: SecurityAlert;
      /** More members of the problem document (the mfa_token of mfa_required). */
      extra?: Record<string, string>;
    } = {},
  ) {
    const headers: Record<string, string> = {};
    if (status === 401) headers['www-authenticate'] = 'Bearer';
    if (options.retryAfterSeconds !== undefined) {
      headers['retry-after'] = String(options.retryAfterSeconds);
    }
    super(status, detail, {
      extra: { error, error_description: detail, ...options.extra },
      headers,
      alert: options.alert,
      contentType: OAUTH_ERROR_CONTENT_TYPE,
    });
  }
}

/**
 * The login throttle's refusal of a password check at the token endpoint (OAuth2 `slow_down`,
 * application/json) or, with `atTokenEndpoint` false (a password change), the same members in a
 * problem document, as every other route answers.
 */
export function tooManyFailedLogins(retryAfterSeconds: number, atTokenEndpoint: boolean): AppError {
  const detail = `Too many failed logins; retry in ${retryAfterSeconds} s`;
  if (atTokenEndpoint) return new OAuthError(429, 'slow_down', detail, { retryAfterSeconds });
  return new AppError(429, detail, {
    extra: { error: 'slow_down', error_description: detail },
    headers: { 'retry-after': String(retryAfterSeconds) },
  });
}

export class ServiceUnavailableError extends AppError {
  constructor(detail: string, cause?: unknown, retryAfterSeconds = 5) {
    super(503, detail, { cause, headers: { 'retry-after': String(retryAfterSeconds) } });
  }
}

export interface FieldError {
  field: string;
  message: string;
}

/** The innermost error of a `cause` chain: Drizzle and our own errors wrap the driver's. */
export function rootCause(error: unknown): unknown {
  let inner = error;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  return inner;
}
