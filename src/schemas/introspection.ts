/** TypeBox schemas of token introspection (RFC 7662). */
import { Type, type Static } from 'typebox';

/** RFC 7662 section 2.1. */
export const IntrospectRequestSchema = Type.Object({
  token: Type.String({
    maxLength: 4096,
    description: 'An access token, a refresh token or a personal access token',
  }),
  token_type_hint: Type.Optional(
    Type.String({
      maxLength: 64,
      description: 'Accepted and not needed: the kind of a token shows in its form',
      examples: ['access_token', 'refresh_token'],
    }),
  ),
});
export type IntrospectRequest = Static<typeof IntrospectRequestSchema>;

/** RFC 7662 section 2.2: only `active` for a token that is not; the standard members otherwise. */
export const IntrospectionSchema = Type.Object(
  {
    active: Type.Boolean({
      description: 'false for a revoked, expired, unknown or malformed token, or a disabled user',
    }),
    scope: Type.Optional(Type.String({ examples: ['movies:read'] })),
    client_id: Type.Optional(Type.String()),
    username: Type.Optional(
      Type.String({ description: "The user's email", examples: ['test_user@myapi.com'] }),
    ),
    token_type: Type.Optional(
      Type.String({
        description:
          '"Bearer" for access tokens and personal access tokens, "refresh_token" for refresh tokens',
        examples: ['Bearer'],
      }),
    ),
    exp: Type.Optional(
      Type.Integer({ description: 'Absent: a personal access token without expiry' }),
    ),
    iat: Type.Optional(Type.Integer()),
    sub: Type.Optional(Type.String({ description: 'The user id', examples: ['1'] })),
    aud: Type.Optional(Type.String()),
    iss: Type.Optional(Type.String()),
    jti: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type Introspection = Static<typeof IntrospectionSchema>;
