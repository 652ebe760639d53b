import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { TOKEN_URL, Tags } from '../const.js';
import { OAuthError } from '../exc.js';
import { TokenRequestSchema, TokenSchema } from '../schemas/auth.js';
import { problemResponses } from '../schemas/problem.js';
import type { Services } from '../services/index.js';

export const authRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  app.post(
    TOKEN_URL,
    {
      attachValidation: true,
      schema: {
        tags: [Tags.auth],
        summary: 'Log in: exchange an email and password for a bearer token',
        description:
          'OAuth2 password grant (RFC 6749 section 4.3) with a form body. `username` is the ' +
          "user's email. A wrong password and an unknown user get the same 401 `invalid_grant`.",
        consumes: ['application/x-www-form-urlencoded'],
        body: TokenRequestSchema,
        response: {
          200: { ...TokenSchema, description: 'A bearer token' },
          ...problemResponses(400, 401, 503),
        },
      },
    },
    async (request, reply) => {
      if (request.validationError) {
        // OAuth2 clients expect invalid_request (400), not a 422, for a malformed grant.
        throw new OAuthError(400, 'invalid_request', request.validationError.message);
      }
      const token = await services.auth.login(request.body);
      void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
      return token;
    },
  );
};
