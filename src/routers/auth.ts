/** HTTP routes of the OAuth2 token endpoint: password and refresh grants, revocation. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { REVOKE_URL, TOKEN_URL, Tags } from '../const.js';
import { OAuthError } from '../exc.js';
import { RevokeRequestSchema, TokenRequestSchema, TokenSchema } from '../schemas/auth.js';
import { oauthErrorResponses, problemResponses } from '../schemas/problem.js';
import type { Services } from '../services/index.js';
import { clientOf } from './client.js';

const FORM = ['application/x-www-form-urlencoded'];

export const authRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  // Token responses are credentials: no cache may keep them (RFC 6749 section 5.1).
  app.addHook('onSend', (_request, reply, payload, done) => {
    void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    done(null, payload);
  });

  app.post(
    TOKEN_URL,
    {
      attachValidation: true,
      schema: {
        tags: [Tags.auth],
        summary: 'Log in, or exchange a refresh token for new tokens',
        description:
          'OAuth2 token endpoint with a form body. **Password grant** (RFC 6749 section 4.3; ' +
          'the default when grant_type is absent): `username` is the email. A wrong password ' +
          'and an unknown user get the same 401 `invalid_grant`; repeated failures get 429 ' +
          '`slow_down` with Retry-After. **Refresh grant** (section 6): `grant_type=refresh_token` ' +
          'and `refresh_token`; every refresh token works once and comes back replaced, and ' +
          'presenting a used one ends that whole login.',
        consumes: FORM,
        body: TokenRequestSchema,
        response: {
          200: { ...TokenSchema, description: 'An access token and its refresh token' },
          ...oauthErrorResponses(400, 401, 429),
          ...problemResponses(503),
        },
      },
    },
    async (request) => {
      if (request.validationError) {
        // OAuth2 clients expect invalid_request (400), not a 422, for a malformed grant.
        throw new OAuthError(400, 'invalid_request', request.validationError.message);
      }
      return services.auth.token(request.body, clientOf(request));
    },
  );

  app.post(
    REVOKE_URL,
    {
      attachValidation: true,
      schema: {
        tags: [Tags.auth],
        summary: 'Log out: revoke an access or refresh token (RFC 7009)',
        description:
          'Ends the login the token belongs to: its refresh tokens stop working at once and its ' +
          'access tokens within MYAPI_TOKEN_RECHECK_SECONDS. Answers 200 for unknown or already ' +
          'revoked tokens too, as RFC 7009 requires.',
        consumes: FORM,
        body: RevokeRequestSchema,
        response: {
          200: {
            type: 'string',
            maxLength: 0,
            description: 'Revoked, or nothing to revoke (no body)',
          },
          ...oauthErrorResponses(400),
          ...problemResponses(503),
        },
      },
    },
    async (request, reply) => {
      if (request.validationError) {
        throw new OAuthError(400, 'invalid_request', request.validationError.message);
      }
      await services.auth.revoke(request.body, clientOf(request));
      return reply.code(200).send('');
    },
  );
};
