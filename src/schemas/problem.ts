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
  },
  { $id: 'Problem', description: 'An RFC 9457 problem document (application/problem+json)' },
);

export type Problem = Static<typeof ProblemSchema>;

const DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request (OAuth2 `invalid_request`, `invalid_grant`, `invalid_scope` or `unsupported_grant_type`)',
  401: 'Missing, malformed, expired, revoked or forged credentials (`WWW-Authenticate: Bearer`)',
  403: 'The token lacks a scope the route needs (`insufficient_scope`; `scope` names them)',
  404: 'No such resource',
  409: 'Conflicts with an existing resource',
  412: 'The `If-Match` ETag is stale: the resource changed since it was read (the current `ETag` is sent)',
  413: 'The request body is too large',
  422: 'Invalid parameters; `errors` lists the failing fields',
  428: 'The write needs an `If-Match` header (the `ETag` from a read, or `*`)',
  429: 'Too many failed logins (`slow_down`); retry after `Retry-After` seconds',
  503: 'The database cannot be reached, or too many logins at once; retry after `Retry-After` seconds',
};

interface ProblemResponse {
  description: string;
  content: { 'application/problem+json': { schema: { $ref: 'Problem' } } };
}

/** Error responses for a route's OpenAPI description, by status, each with its meaning. */
export function problemResponses(...statuses: number[]): Record<number, ProblemResponse> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: DESCRIPTIONS[status] ?? 'Error',
        content: { 'application/problem+json': { schema: { $ref: 'Problem' as const } } },
      },
    ]),
  );
}
