/** TypeBox schemas of personal access tokens: what /users/me/tokens and /users/{id}/tokens read and write. */
import { Type, type Static } from 'typebox';

/** Longest lifetime a request may ask for; the server's MYAPI_ACCESS_TOKENS__MAX_LIFETIME_DAYS may be lower. */
export const ACCESS_TOKEN_DAYS_MAX = 3650;
/** Lifetime of a token whose request names none (capped by the server's maximum). */
export const ACCESS_TOKEN_DAYS_DEFAULT = 30;

export const AccessTokenCreateSchema = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 100,
      description: 'What the token is for, to tell it apart in the list',
      examples: ['nightly import'],
    }),
    scope: Type.Optional(
      Type.String({
        maxLength: 200,
        description:
          'Space-separated scopes, a subset of those of the token making the request; ' +
          'empty or absent means all of them',
        examples: ['movies:read'],
      }),
    ),
    expires_in_days: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: ACCESS_TOKEN_DAYS_MAX }), Type.Null()], {
        description:
          `Days until the token expires (default ${ACCESS_TOKEN_DAYS_DEFAULT}, at most the ` +
          "server's MYAPI_ACCESS_TOKENS__MAX_LIFETIME_DAYS); null for no expiry, where " +
          'MYAPI_ACCESS_TOKENS__ALLOW_NO_EXPIRY allows it',
        examples: [90],
      }),
    ),
  },
  { additionalProperties: false },
);
export type AccessTokenCreate = Static<typeof AccessTokenCreateSchema>;

const Timestamp = Type.String({ format: 'date-time', examples: ['2026-01-31T12:00:00.000Z'] });

const accessTokenFields = {
  token_id: Type.String({ format: 'uuid', description: 'Names the token to revoke it' }),
  name: Type.String({ examples: ['nightly import'] }),
  prefix: Type.String({
    description: 'The start of the secret, to recognise it',
    examples: ['myapi_pat_4XbT9q'],
  }),
  scope: Type.String({ description: 'The granted scopes', examples: ['movies:read'] }),
  created_at: Timestamp,
  last_used_at: Type.Union([Timestamp, Type.Null()], {
    description: 'Updated at most once a minute; null: never used',
  }),
  expires_at: Type.Union([Timestamp, Type.Null()], { description: 'null: never expires' }),
};

export const AccessTokenSchema = Type.Object(accessTokenFields);
export type AccessToken = Static<typeof AccessTokenSchema>;

export const AccessTokenListSchema = Type.Array(AccessTokenSchema);

export const AccessTokenCreatedSchema = Type.Object({
  ...accessTokenFields,
  token: Type.String({
    description:
      'The secret: a Bearer token for every route its scopes allow. Shown only in this answer.',
    examples: ['myapi_pat_...'],
  }),
});
export type AccessTokenCreated = Static<typeof AccessTokenCreatedSchema>;

const TokenId = Type.String({ format: 'uuid' });

export const TokenIdParamsSchema = Type.Object({ token_id: TokenId });

export const UserTokenParamsSchema = Type.Object({
  user_id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }),
  token_id: TokenId,
});
