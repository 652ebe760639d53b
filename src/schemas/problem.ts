import { Type, type Static } from 'typebox';

export const FieldErrorSchema = Type.Object({
  field: Type.String({ examples: ['query.year'] }),
  message: Type.String({ examples: ['must be integer'] }),
});

/** RFC 9457 problem details; `detail` is always a string, as FastAPI clients expect. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ examples: ['about:blank'] }),
    title: Type.String({ examples: ['Not Found'] }),
    status: Type.Integer({ examples: [404] }),
    detail: Type.String({ examples: ['Movie 12345 not found'] }),
    error: Type.Optional(Type.String({ description: 'OAuth2 error code (RFC 6749 section 5.2)' })),
    error_description: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(FieldErrorSchema, { description: 'The failing fields' })),
  },
  { $id: 'Problem', description: 'An RFC 9457 problem document (application/problem+json)' },
);

export type Problem = Static<typeof ProblemSchema>;

const ref = Type.Ref('Problem');

/** Error responses for a route's OpenAPI description, by status. */
export function problemResponses(...statuses: number[]): Record<number, typeof ref> {
  return Object.fromEntries(statuses.map((status) => [status, ref]));
}
