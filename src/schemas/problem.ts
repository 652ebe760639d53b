/**
 * The RFC 9457 problem document every error answers with, and the error responses every operation
 * shares; the token endpoints send their OAuth2 errors with the same members as application/json.
 */
import { Type, type Static } from 'typebox';

export const FieldErrorSchema = Type.Object({
  field: Type.String({ examples: ['query.year'] }),
  message: Type.String({ examples: ['must be integer'] }),
});

/** RFC 9457 problem details; `detail` is always a string, as FastAPI clients expect. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'Always about:blank: the status says it all' }),
    title: Type.String({ description: 'The HTTP status text' }),
    status: Type.Integer({ description: 'The HTTP status code' }),
    detail: Type.String({ description: 'What went wrong, for people' }),
    error: Type.Optional(Type.String({ description: 'OAuth2 error code (RFC 6749 section 5.2)' })),
    error_description: Type.Optional(Type.String()),
    scope: Type.Optional(
      Type.String({ description: 'With 403 insufficient_scope: the scopes the route needs' }),
    ),
    errors: Type.Optional(Type.Array(FieldErrorSchema, { description: 'The failing fields' })),
    mfa_token: Type.Optional(
      Type.String({
        description: 'With error mfa_required: completes the login with a second factor',
      }),
    ),
  },
  {
    $id: 'Problem',
    description:
      'An RFC 9457 problem document (application/problem+json); the OAuth2 errors of the token ' +
      'endpoints carry the same members as application/json (RFC 6749 section 5.2)',
  },
);

export type Problem = Static<typeof ProblemSchema>;

const DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request: a body that does not parse as its content type, or malformed HTTP',
  401: 'Missing, malformed, expired, revoked or forged credentials (`WWW-Authenticate: Bearer`)',
  403: 'The token lacks a scope the route needs (`insufficient_scope`; `scope` names them)',
  404: 'No such resource',
  408: 'The request was not received in time (the connection closes)',
  409: 'Conflicts with an existing resource',
  412: 'The `If-Match` ETag is stale: the resource changed since it was read (the current `ETag` is sent)',
  413: 'The request body is too large (the connection closes)',
  414: 'A path parameter is too long',
  415: 'The body has a content type this operation does not take',
  422: 'Invalid parameters; `errors` lists the failing fields',
  428: 'The write needs an `If-Match` header (the `ETag` from a read, or `*`)',
  429: 'Too many failed logins (`slow_down`); retry after `Retry-After` seconds',
  431: 'The request line and headers are too large (the connection closes)',
  503: 'The database cannot be reached, the server is stopping, or too many logins at once; retry after `Retry-After` seconds',
};

const PROBLEM_MEDIA = { schema: { $ref: 'Problem' as const } };

interface ProblemResponse {
  description: string;
  content: {
    'application/problem+json'?: typeof PROBLEM_MEDIA;
    'application/json'?: typeof PROBLEM_MEDIA;
  };
}

/** The token endpoint's 400: RFC 6749 section 5.2's error codes. */
const OAUTH_BAD_REQUEST =
  'Malformed request (OAuth2 `invalid_request`, `invalid_grant`, `invalid_scope` or ' +
  '`unsupported_grant_type`, as application/json), or a body that does not parse or malformed ' +
  'HTTP (application/problem+json); `mfa_required` with an `mfa_token` when the account has ' +
  'two-factor authentication on; `slow_down` with Retry-After after too many wrong ' +
  'two-factor codes';

/** One error response for a route's OpenAPI description, with its meaning. */
export function problemResponse(status: number, description = DESCRIPTIONS[status] ?? 'Error') {
  return {
    description,
    content: { 'application/problem+json': PROBLEM_MEDIA },
  } satisfies ProblemResponse;
}

const OAUTH_DESCRIPTIONS = {
  400: OAUTH_BAD_REQUEST,
  401: 'A wrong password, an unknown user or a disabled account (OAuth2 `invalid_grant`, `WWW-Authenticate: Bearer`)',
  429: DESCRIPTIONS[429] ?? 'Too many requests',
};

/**
 * The OAuth2 error responses of the token endpoints (routers/auth.ts, introspection.ts): the
 * problem document's members as application/json (RFC 6749 section 5.2), as `OAuthError` sends
 * them. A 400 can also be a body that does not parse or malformed HTTP: problem+json, as
 * everywhere.
 */
export function oauthErrorResponses(
  ...statuses: (keyof typeof OAUTH_DESCRIPTIONS)[]
): Record<number, ProblemResponse> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: OAUTH_DESCRIPTIONS[status],
        content: {
          'application/json': PROBLEM_MEDIA,
          ...(status === 400 ? { 'application/problem+json': PROBLEM_MEDIA } : {}),
        },
      },
    ]),
  );
}

/** Error responses for a route's OpenAPI description, by status, each with its meaning. */
export function problemResponses(...statuses: number[]): Record<number, ProblemResponse> {
  return Object.fromEntries(statuses.map((status) => [status, problemResponse(status)]));
}

/** Methods whose requests Fastify reads a body of: they can also get 413 and 415. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * The errors any operation can answer before or besides its own logic: malformed HTTP (400),
 * a slow client (408), a long path parameter (414), an unknown query parameter (422), headers
 * too large (431), the database lost
 * or the server stopping (503), and for operations with a body, 413 and 415.
 */
export function sharedProblemResponses(method: string): Record<number, ProblemResponse> {
  const statuses = BODY_METHODS.has(method)
    ? [400, 408, 413, 414, 415, 422, 431, 503]
    : [400, 408, 414, 422, 431, 503];
  return problemResponses(...statuses);
}
