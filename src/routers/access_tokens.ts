/** HTTP routes of personal access tokens: yours under /users/me/tokens, anyone's for users:admin. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ForbiddenError } from '../exc.js';
import {
  AccessTokenCreatedSchema,
  AccessTokenCreateSchema,
  AccessTokenListSchema,
  TokenIdParamsSchema,
  UserTokenParamsSchema,
} from '../schemas/access_tokens.js';
import { problemResponses } from '../schemas/problem.js';
import { UserIdParamsSchema } from '../schemas/users.js';
import type { Services } from '../services/index.js';
import { bearerSecurity, principalOf, requireScopes } from './deps.js';
import { USERS_ADMIN, USERS_TAG } from '../services/users_definition.js';

const noContent = { type: 'null', description: 'Revoked' } as const;
const list = { ...AccessTokenListSchema, description: 'The tokens not revoked, newest first' };

export const accessTokensRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  const { auth, accessTokens, users } = services;
  const self = { onRequest: requireScopes(auth) };
  const selfDoc = { tags: [USERS_TAG], security: bearerSecurity() };
  const admin = { onRequest: requireScopes(auth, USERS_ADMIN) };
  const adminDoc = { tags: [USERS_TAG], security: bearerSecurity(USERS_ADMIN) };

  app.post(
    '/users/me/tokens',
    {
      ...self,
      schema: {
        ...selfDoc,
        summary: 'Create a personal access token',
        description:
          'A named Bearer token for programs, with some of the scopes of the token making the ' +
          'request and an expiry. The secret (`token`) is in this answer only. A personal ' +
          'access token cannot create another (403).',
        body: AccessTokenCreateSchema,
        response: {
          201: { ...AccessTokenCreatedSchema, description: 'The token and its secret' },
          ...problemResponses(401, 403, 422),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      if (principal.personalAccessToken === true) {
        throw new ForbiddenError('A personal access token cannot create tokens; log in instead');
      }
      const created = await accessTokens.create(principal.userId, principal.scopes, request.body);
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/users/me/tokens',
    {
      ...self,
      schema: {
        ...selfDoc,
        summary: 'Your personal access tokens',
        response: { 200: list, ...problemResponses(401) },
      },
    },
    (request) => accessTokens.list(principalOf(request).userId),
  );

  app.delete(
    '/users/me/tokens/:token_id',
    {
      ...self,
      schema: {
        ...selfDoc,
        summary: 'Revoke one of your personal access tokens',
        params: TokenIdParamsSchema,
        response: { 204: noContent, ...problemResponses(401, 404, 422) },
      },
    },
    async (request, reply) => {
      await accessTokens.revoke(principalOf(request).userId, request.params.token_id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/users/:user_id/tokens',
    {
      ...admin,
      schema: {
        ...adminDoc,
        summary: "A user's personal access tokens",
        params: UserIdParamsSchema,
        response: { 200: list, ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      await users.get(request.params.user_id);
      return accessTokens.list(request.params.user_id);
    },
  );

  app.delete(
    '/users/:user_id/tokens/:token_id',
    {
      ...admin,
      schema: {
        ...adminDoc,
        summary: "Revoke a user's personal access token",
        params: UserTokenParamsSchema,
        response: { 204: noContent, ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      await accessTokens.revoke(request.params.user_id, request.params.token_id);
      return reply.code(204).send(null);
    },
  );
};
