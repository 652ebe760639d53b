// MYAPI_TRUSTED_ISSUERS: the external issuers whose access tokens are accepted, parsed and checked.
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';

const TrustedIssuerSchema = Type.Object(
  {
    /** The `iss` of its tokens, exactly. */
    issuer: Type.String({ minLength: 1 }),
    jwks_uri: Type.String({ pattern: '^https?://' }),
    /** The `aud` its tokens must carry for this API. */
    audience: Type.String({ minLength: 1 }),
    /** How a token names the local user: its `email` claim, or `sub` holding the local user id. */
    user_claim: Type.Union([Type.Literal('email'), Type.Literal('sub')], { default: 'email' }),
    /** The most its tokens may grant here: catalogue scopes only, never users:admin. */
    scopes: Type.Array(
      Type.String({
        // A service's read or write scope (services/definition.ts); never an admin scope.
        pattern: '^[a-z][a-z0-9_]*:(read|write)$',
      }),
    ),
    algorithms: Type.Array(
      Type.Union([Type.Literal('EdDSA'), Type.Literal('ES256'), Type.Literal('RS256')]),
      {
        default: ['EdDSA', 'ES256', 'RS256'],
        minItems: 1,
      },
    ),
    /** An unknown kid fetches the JWK set again at most this often. */
    jwks_cooldown_seconds: Type.Number({ minimum: 0, maximum: 3600, default: 30 }),
    /** A fetched JWK set is used this long before it is fetched again. */
    jwks_max_age_seconds: Type.Number({ minimum: 1, maximum: 86_400, default: 600 }),
  },
  { additionalProperties: false },
);
const TrustedIssuersSchema = Type.Array(TrustedIssuerSchema);

export type TrustedIssuer = Static<typeof TrustedIssuerSchema>;

/** The parsed setting, or a sentence saying what is wrong with it. */
export function parseTrustedIssuers(text: string | undefined): TrustedIssuer[] | string {
  if (text === undefined || text.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'must be a JSON array of trusted issuers (not valid JSON)';
  }
  const candidate = Value.Default(TrustedIssuersSchema, parsed);
  const [error] = Value.Errors(TrustedIssuersSchema, candidate);
  if (error !== undefined) {
    return `must be a JSON array of trusted issuers (${error.instancePath || '/'} ${error.message})`;
  }
  const issuers = candidate as TrustedIssuer[];
  const names = new Set(issuers.map((entry) => entry.issuer));
  if (names.size !== issuers.length) return 'must name each issuer once';
  return issuers;
}
