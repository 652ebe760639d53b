import { Type, type Static } from 'typebox';

/**
 * The OAuth2 password grant form (RFC 6749 section 4.3.2). client_id and client_secret are
 * accepted and ignored: Swagger UI and OAuth2 client libraries send them.
 */
export const TokenRequestSchema = Type.Object({
  grant_type: Type.Optional(
    Type.String({ description: 'Must be "password" when present', examples: ['password'] }),
  ),
  username: Type.String({ description: "The user's email", examples: ['test_user@myapi.com'] }),
  password: Type.String({ format: 'password', examples: ['qwerty123'] }),
  scope: Type.Optional(Type.String({ description: 'Ignored for now; may be empty' })),
  client_id: Type.Optional(Type.String()),
  client_secret: Type.Optional(Type.String({ format: 'password' })),
});
export type TokenRequest = Static<typeof TokenRequestSchema>;

export const TokenSchema = Type.Object(
  {
    access_token: Type.String(),
    token_type: Type.Literal('bearer'),
    expires_in: Type.Integer({ description: 'Seconds until the token expires', examples: [3600] }),
  },
  { $id: 'Token' },
);
export type Token = Static<typeof TokenSchema>;

/** What a verified access token says about its bearer. */
export interface Principal {
  userId: number;
  email: string;
  name: string;
}
