/** GET /.well-known/jwks.json and /.well-known/oauth-authorization-server (RFC 8414). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Settings } from '../backend/config.js';
import { REVOKE_URL, Tags, TOKEN_URL } from '../const.js';
import { SCOPE_DESCRIPTIONS } from '../services/scopes.js';
import { AuthorizationServerMetadataSchema, JwksSchema } from '../schemas/well_known.js';
import type { KeyRing } from '../services/signing_keys.js';

export const JWKS_PATH = '/.well-known/jwks.json';
export const METADATA_PATH = '/.well-known/oauth-authorization-server';
export const INTROSPECT_URL = '/token/introspect';

/** Caches may keep the documents this long: well under a token's lifetime (docs/authentication.md). */
const MAX_AGE_SECONDS = 300;

export interface WellKnownOptions {
  settings: Settings;
  /** The key set; undefined in HS256 mode, where there is no public key to publish. */
  ring: KeyRing | undefined;
}

/**
 * The absolute base URL of this server: MYAPI_PUBLIC_URL, or the request's scheme and host,
 * which Fastify takes from X-Forwarded-Proto/-Host only when the peer is a trusted proxy.
 */
function baseUrl(settings: Settings, request: FastifyRequest): string {
  if (settings.public_url !== undefined) return settings.public_url.replace(/\/+$/, '');
  return `${request.protocol}://${request.host}`;
}

export const wellKnownRouter: FastifyPluginAsyncTypebox<WellKnownOptions> = async (
  app,
  { settings, ring },
) => {
  const maxAge = Math.min(MAX_AGE_SECONDS, settings.token_expire_minutes * 60);
  const cacheControl = `public, max-age=${maxAge}`;

  app.get(
    JWKS_PATH,
    {
      logLevel: 'warn',
      schema: {
        tags: [Tags.auth],
        summary: 'The public keys that verify access tokens (RFC 7517 JWK set)',
        description:
          'Every key that signs or still verifies access tokens, chosen by the `kid` header of ' +
          'a token. Empty when tokens are signed with the shared HS256 key (MYAPI_TOKEN_KEY).',
        response: { 200: { ...JwksSchema, description: 'The JWK set' } },
      },
    },
    async (_request, reply) => {
      void reply.header('cache-control', cacheControl);
      return ring?.jwks() ?? { keys: [] };
    },
  );

  app.get(
    METADATA_PATH,
    {
      logLevel: 'warn',
      schema: {
        tags: [Tags.auth],
        summary: 'OAuth 2.0 authorization server metadata (RFC 8414)',
        response: {
          200: { ...AuthorizationServerMetadataSchema, description: 'The metadata document' },
        },
      },
    },
    async (request, reply) => {
      const base = baseUrl(settings, request);
      void reply.header('cache-control', cacheControl);
      return {
        issuer: base,
        token_endpoint: `${base}${TOKEN_URL}`,
        revocation_endpoint: `${base}${REVOKE_URL}`,
        introspection_endpoint: `${base}${INTROSPECT_URL}`,
        jwks_uri: `${base}${JWKS_PATH}`,
        grant_types_supported: ['password', 'refresh_token'],
        scopes_supported: Object.keys(SCOPE_DESCRIPTIONS),
        // No authorization endpoint: the password and refresh grants need none.
        response_types_supported: [],
        // Public clients: a client id and secret are accepted and ignored.
        token_endpoint_auth_methods_supported: ['none'],
        revocation_endpoint_auth_methods_supported: ['none'],
      };
    },
  );
};
