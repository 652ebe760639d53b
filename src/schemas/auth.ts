/** TypeBox schemas of the OAuth2 token endpoints: the password and refresh grants, revocation. */
import { Type, type Static } from 'typebox';
import type { Scope } from '../const.js';

/**
 * The token endpoint's form (RFC 6749 sections 4.3.2 and 6): the password grant (the default
 * when grant_type is absent, as in the tutorial) or the refresh grant. Which fields a grant
 * needs is checked by the service, so a missing one is OAuth2's invalid_request. client_id and
 * client_secret are accepted and ignored: Swagger UI and OAuth2 client libraries send them.
 */
export const TokenRequestSchema = Type.Object({
  grant_type: Type.Optional(
    Type.String({
      maxLength: 64,
      description:
        '"password" (the default), "refresh_token", or for the two-factor step ' +
        '"http://auth0.com/oauth/grant-type/mfa-otp" or ' +
        '"http://auth0.com/oauth/grant-type/mfa-recovery-code"',
      examples: ['password'],
    }),
  ),
  username: Type.Optional(
    Type.String({
      maxLength: 320,
      description: "Password grant: the user's email",
      examples: ['test_user@myapi.com'],
    }),
  ),
  password: Type.Optional(
    Type.String({ maxLength: 4096, format: 'password', examples: ['qwerty123'] }),
  ),
  refresh_token: Type.Optional(
    // Generous: an access token sent here by mistake must get invalid_grant, not invalid_request.
    Type.String({ maxLength: 4096, description: 'Refresh grant: the refresh token to exchange' }),
  ),
  scope: Type.Optional(
    Type.String({
      maxLength: 200,
      description:
        'Space-separated scopes to grant; empty means all the user may have (password grant) ' +
        "or the login's scopes (refresh grant)",
      examples: ['movies:read'],
    }),
  ),
  mfa_token: Type.Optional(
    Type.String({
      maxLength: 200,
      description: 'Two-factor step: the mfa_token of the mfa_required answer',
    }),
  ),
  otp: Type.Optional(
    Type.String({
      maxLength: 20,
      description: 'Two-factor step (mfa-otp grant): the 6-digit code of the authenticator app',
    }),
  ),
  recovery_code: Type.Optional(
    Type.String({
      maxLength: 40,
      description: 'Two-factor step (mfa-recovery-code grant): one of the recovery codes',
    }),
  ),
  client_id: Type.Optional(Type.String({ maxLength: 200 })),
  client_secret: Type.Optional(Type.String({ maxLength: 200, format: 'password' })),
});
export type TokenRequest = Static<typeof TokenRequestSchema>;

export const TokenSchema = Type.Object(
  {
    access_token: Type.String(),
    token_type: Type.Literal('bearer'),
    expires_in: Type.Integer({
      description: 'Seconds until the access token expires',
      examples: [3600],
    }),
    refresh_token: Type.String({
      description:
        'Exchange it at POST /token (grant_type=refresh_token) for new tokens; single use',
    }),
    scope: Type.String({ description: 'The granted scopes', examples: ['movies:read'] }),
  },
  { $id: 'Token' },
);
export type Token = Static<typeof TokenSchema>;

/** RFC 7009 section 2.1. */
export const RevokeRequestSchema = Type.Object({
  token: Type.String({ maxLength: 4096, description: 'An access or refresh token' }),
  token_type_hint: Type.Optional(
    Type.String({ maxLength: 64, examples: ['refresh_token', 'access_token'] }),
  ),
  client_id: Type.Optional(Type.String({ maxLength: 200 })),
  client_secret: Type.Optional(Type.String({ maxLength: 200, format: 'password' })),
});
export type RevokeRequest = Static<typeof RevokeRequestSchema>;

/** The claims of our access tokens besides the registered ones (iat, iss, aud, jti). */
export interface TokenClaims {
  /** Seconds since the epoch; fast-jwt has checked it is present and in the future. */
  exp: number;
  sub: string;
  sid: string;
  scope: string;
  email: string;
  name: string;
}

/** What a verified access token, checked against its live session, says about its bearer. */
export interface Principal {
  userId: number;
  sessionId: string;
  email: string;
  name: string;
  /** The token's scopes that the user still holds. */
  scopes: readonly Scope[];
  /** Set when the bearer is a personal access token, which may not mint other tokens. */
  personalAccessToken?: true;
}
