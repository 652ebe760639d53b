/** HTTP routes of a user's logins: list them, end one, end all others; admins for any user. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { NotFoundError } from '../exc.js';
import { problemResponses } from '../schemas/problem.js';
import {
  SessionIdParamsSchema,
  UserSessionListSchema,
  UserSessionParamsSchema,
} from '../schemas/user_sessions.js';
import { UserIdParamsSchema } from '../schemas/users.js';
import type { Services } from '../services/index.js';
import type { SessionSummary } from '../services/sessions.js';
import { actorOf } from './client.js';
import { bearerSecurity, principalOf, requireScopes } from './deps.js';
import { USERS_ADMIN, USERS_TAG } from '../services/users_definition.js';

const noContent = { type: 'null', description: 'Done' } as const;
const listed = { ...UserSessionListSchema, description: 'The live logins, latest used first' };

function shown(session: SessionSummary, currentId: string) {
  return {
    ...session,
    created_at: session.created_at.toISOString(),
    last_used_at: session.last_used_at.toISOString(),
    expires_at: session.expires_at.toISOString(),
    current: session.session_id === currentId,
  };
}

export const userSessionsRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  const { sessions, users, auth } = services;
  const self = { onRequest: requireScopes(auth) };
  const selfDoc = { tags: [USERS_TAG], security: bearerSecurity() };
  const admin = { onRequest: requireScopes(auth, USERS_ADMIN) };
  const adminDoc = { tags: [USERS_TAG], security: bearerSecurity(USERS_ADMIN) };

  app.get(
    '/users/me/sessions',
    {
      ...self,
      schema: {
        ...selfDoc,
        summary: 'Your logins',
        description:
          'Every live login of your account (not revoked, not expired): when it began and was ' +
          'last refreshed, from which address and client. `current` marks this request’s own.',
        response: { 200: listed, ...problemResponses(401) },
      },
    },
    async (request) => {
      const { userId, sessionId } = principalOf(request);
      return (await sessions.listSessions(userId)).map((session) => shown(session, sessionId));
    },
  );

  app.delete(
    '/users/me/sessions/:session_id',
    {
      ...self,
      schema: {
        ...selfDoc,
        summary: 'End one of your logins',
        description:
          'Its refresh token stops working at once, its access tokens within ' +
          'MYAPI_TOKEN_RECHECK_SECONDS. 404 for a login that is not yours or already ended.',
        params: SessionIdParamsSchema,
        response: { 204: noContent, ...problemResponses(401, 404, 422) },
      },
    },
    async (request, reply) => {
      const { userId } = principalOf(request);
      const ended = await sessions.revokeSession(request.params.session_id, 'ended by user', {
        userId,
        ...actorOf(request),
      });
      if (!ended) throw new NotFoundError('No such live login of yours');
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/users/me/sessions',
    {
      ...self,
      schema: {
        ...selfDoc,
        summary: 'End all your other logins',
        description: 'Every login of your account but the one making this request ends.',
        response: { 204: noContent, ...problemResponses(401) },
      },
    },
    async (request, reply) => {
      const { userId, sessionId } = principalOf(request);
      await sessions.revokeOtherSessions(userId, sessionId, 'ended by user', actorOf(request));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/users/:user_id/sessions',
    {
      ...admin,
      schema: {
        ...adminDoc,
        summary: "A user's logins",
        params: UserIdParamsSchema,
        response: { 200: listed, ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { user_id } = request.params;
      await users.get(user_id);
      const current = principalOf(request).sessionId;
      return (await sessions.listSessions(user_id)).map((session) => shown(session, current));
    },
  );

  app.delete(
    '/users/:user_id/sessions/:session_id',
    {
      ...admin,
      schema: {
        ...adminDoc,
        summary: "End one of a user's logins",
        description: '404 when the user has no such live login.',
        params: UserSessionParamsSchema,
        response: { 204: noContent, ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const { user_id, session_id } = request.params;
      const ended = await sessions.revokeSession(session_id, 'ended by admin', {
        userId: user_id,
        ...actorOf(request),
      });
      if (!ended) throw new NotFoundError(`User ${user_id} has no such live login`);
      return reply.code(204).send(null);
    },
  );
};
