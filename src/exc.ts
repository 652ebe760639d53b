import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Errors a service may raise. Each knows its HTTP status, so routers never translate them, and the
 * one error handler below turns every error into an RFC 9457 problem document.
 */
export class AppError extends Error {
  readonly status: number;
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
    } = {},
  ) {
    super(detail, { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
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
  | 'slow_down';

/** Token endpoint errors (RFC 6749 section 5.2), carrying the standard `error` code. */
export class OAuthError extends AppError {
  constructor(
    status: 400 | 401 | 429,
    error: OAuthErrorCode,
    detail: string,
    options: { retryAfterSeconds?: number; alert?: SecurityAlert } = {},
  ) {
    const headers: Record<string, string> = {};
    if (status === 401) headers['www-authenticate'] = 'Bearer';
    if (options.retryAfterSeconds !== undefined) {
      headers['retry-after'] = String(options.retryAfterSeconds);
    }
    super(status, detail, {
      extra: { error, error_description: detail },
      headers,
      alert: options.alert,
    });
  }
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

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const STATUS_TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function titleFor(status: number): string {
  return STATUS_TITLES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error');
}

/** The first stack frame of our own code: where the error was raised, as the tutorial logs it. */
function raisedAt(error: Error): string | undefined {
  const frame = error.stack
    ?.split('\n')
    .slice(1)
    .find((line) => !line.includes('node_modules') && !line.includes('node:'));
  return frame?.trim().replace(/^at /, '');
}

/** The innermost error of a `cause` chain: Drizzle and our own errors wrap the driver's. */
export function rootCause(error: unknown): unknown {
  let inner = error;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  return inner;
}

/** The innermost cause's message, on one line: what actually went wrong underneath. */
function causeOf(error: Error): string | undefined {
  const inner = rootCause(error);
  return inner === error || !(inner instanceof Error)
    ? undefined
    : inner.message.replace(/\s+/g, ' ').trim();
}

function validationErrors(error: FastifyError): FieldError[] {
  return (error.validation ?? []).map((issue) => {
    const path = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
    const params = issue.params as { missingProperty?: unknown; additionalProperty?: unknown };
    // Name the field that is missing, or the unknown one that was sent (a typo, usually).
    const named = params.missingProperty ?? params.additionalProperty;
    const field = [error.validationContext, path, typeof named === 'string' ? named : '']
      .filter((part) => part !== undefined && part !== '')
      .join('.');
    return { field, message: issue.message ?? 'is invalid' };
  });
}

function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error && 'code' in error;
}

/** Turns any error into a problem document and logs it exactly once, with its cause. */
export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  let status = 500;
  let detail = 'Internal server error';
  let headers: Record<string, string> = {};
  let extra: Record<string, unknown> = {};

  if (error instanceof AppError) {
    ({ status, headers, extra } = error);
    detail = error.message;
  } else if (isFastifyError(error) && error.validation) {
    status = 422;
    const errors = validationErrors(error);
    detail = `Invalid request: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}`;
    extra = { errors };
  } else if (
    isFastifyError(error) &&
    typeof error.statusCode === 'number' &&
    error.statusCode >= 400 &&
    error.statusCode < 500
  ) {
    // Fastify's own client errors (bad JSON, unsupported media type, body too large) are safe to show.
    status = error.statusCode;
    detail = error.message;
  }

  const where = error instanceof Error ? raisedAt(error) : undefined;
  const cause = error instanceof Error ? causeOf(error) : undefined;
  if (error instanceof AppError && error.alert !== undefined) {
    request.log.warn({ status, detail, ...error.alert.fields }, error.alert.message);
  } else if (!(error instanceof AppError) && status >= 500) {
    // A bug: the whole error with its stack, once.
    request.log.error({ err: error }, 'request failed');
  } else if (status >= 500) {
    // An expected condition (database down, overload): one line, no stack, and it can be
    // thousands a second under the very load it protects against.
    request.log.warn({ status, detail, cause }, 'request refused');
  } else {
    request.log.info({ status, detail, where, cause }, 'request rejected');
  }

  void reply
    .code(status)
    .headers(headers)
    .type(PROBLEM_CONTENT_TYPE)
    .send({ type: 'about:blank', title: titleFor(status), status, detail, ...extra });
}

/** Unknown routes answer with the same problem shape as every other error. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  void reply
    .code(404)
    .type(PROBLEM_CONTENT_TYPE)
    .send({
      type: 'about:blank',
      title: titleFor(404),
      status: 404,
      detail: `Route ${request.method} ${request.url.split('?')[0] ?? ''} not found`,
    });
}
