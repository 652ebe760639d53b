/** HTTP route of token introspection (RFC 7662), for resource servers holding an admin token. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { INTROSPECT_URL, Tags } from '../const.js';
import { OAuthError } from '../exc.js';
import { IntrospectionSchema, IntrospectRequestSchema } from '../schemas/introspection.js';
import { oauthErrorResponses, problemResponses } from '../schemas/problem.js';
import type { Services } from '../services/index.js';
import { bearerSecurity, requireScopes } from './deps.js';
import { USERS_ADMIN } from '../services/users_definition.js';

export const introspectionRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  // The answer describes a credential: no cache may keep it (RFC 7662 section 4).
  app.addHook('onSend', (_request, reply, payload, done) => {
    void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    done(null, payload);
  });

  app.post(
    INTROSPECT_URL,
    {
      onRequest: requireScopes(services.auth, USERS_ADMIN),
      attachValidation: true,
      schema: {
        tags: [Tags.auth],
        summary: 'Is this token active, and what does it grant? (RFC 7662)',
        description:
          'For resource servers, authenticated with a Bearer token holding users:admin. Takes ' +
          'an access token, a refresh token or a personal access token. A revoked, expired, ' +
          'unknown or malformed token, or one of a disabled user, gets `{"active": false}` and ' +
          'nothing more; an active one the standard members. `scope` is what the token grants ' +
          "now (a demoted user's token loses the scopes the role no longer allows).",
        consumes: ['application/x-www-form-urlencoded'],
        body: IntrospectRequestSchema,
        security: bearerSecurity(USERS_ADMIN),
        response: {
          200: { ...IntrospectionSchema, description: 'The token, active or not' },
          ...oauthErrorResponses(400),
          ...problemResponses(401, 403, 503),
        },
      },
    },
    async (request) => {
      if (request.validationError) {
        throw new OAuthError(400, 'invalid_request', request.validationError.message);
      }
      return services.introspection.introspect(request.body);
    },
  );
};
