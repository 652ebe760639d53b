/** HTTP routes of /users: your account, and user administration (users:admin). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problemResponses } from '../schemas/problem.js';
import {
  MeUpdateSchema,
  PasswordChangeSchema,
  UserCreateSchema,
  UserIdParamsSchema,
  UserListQuerySchema,
  UserListSchema,
  UserUpdateSchema,
} from '../schemas/users.js';
import type { Services } from '../services/index.js';
import { USERS_ADMIN, usersDefinition } from '../services/users_definition.js';
import { actorOf, clientOf } from './client.js';
import { bearerSecurity, linkNextPage, principalOf, requireScopes } from './deps.js';

const tags = [usersDefinition.tag.name];

const userRef = { $ref: 'User', description: 'The user' } as const;
const noContent = { type: 'null', description: 'Done' } as const;

export const router: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  const { users, auth } = services;
  // Any valid token may look after its own account; managing others needs users:admin.
  const self = { onRequest: requireScopes(auth) };
  const selfDoc = { tags, security: bearerSecurity() };
  const admin = { onRequest: requireScopes(auth, USERS_ADMIN) };
  const adminDoc = { tags, security: bearerSecurity(USERS_ADMIN) };

  app.get(
    '/users/me',
    {
      ...self,
      schema: {
        ...selfDoc,
        summary: 'Your account',
        response: { 200: userRef, ...problemResponses(401) },
      },
    },
    (request) => users.get(principalOf(request).userId),
  );

  app.patch(
    '/users/me',
    {
      ...self,
      schema: {
        ...selfDoc,
        summary: 'Change your name',
        body: MeUpdateSchema,
        response: { 200: userRef, ...problemResponses(401, 422) },
      },
    },
    (request) =>
      users.update(principalOf(request).userId, { name: request.body.name }, actorOf(request)),
  );

  app.post(
    '/users/me/password',
    {
      ...self,
      schema: {
        ...selfDoc,
        summary: 'Change your password',
        description:
          'Needs the current password. The new one must pass the password policy (422 says ' +
          'why not). Every login of the account ends, this one included: log in again. Wrong ' +
          'current passwords count towards the login throttle (429 with Retry-After).',
        body: PasswordChangeSchema,
        response: { 204: noContent, ...problemResponses(401, 403, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const { current_password, new_password } = request.body;
      await auth.changePassword(
        principalOf(request),
        { current: current_password, next: new_password },
        clientOf(request),
      );
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/users',
    {
      ...admin,
      schema: {
        ...adminDoc,
        summary: 'List users, by user_id, a page at a time',
        description:
          'Keyset pagination: the `Link: <...>; rel="next"` header holds the next page, absent ' +
          'on the last. `X-Total-Count` is the number of users.',
        querystring: UserListQuerySchema,
        response: {
          200: { ...UserListSchema, description: 'One page of users' },
          ...problemResponses(401, 403, 422),
        },
      },
    },
    async (request, reply) => {
      const page = await users.list(request.query);
      void reply.header('x-total-count', String(page.total));
      linkNextPage(
        reply,
        request.url,
        page.next === undefined
          ? undefined
          : { limit: String(request.query.limit), after: String(page.next) },
      );
      return page.users;
    },
  );

  app.post(
    '/users',
    {
      ...admin,
      schema: {
        ...adminDoc,
        summary: 'Create a user',
        description: 'The password must pass the password policy (422 says why not).',
        body: UserCreateSchema,
        response: { 201: userRef, ...problemResponses(401, 403, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const user = await users.createUser(request.body, {
        enforcePolicy: true,
        ...actorOf(request),
      });
      return reply.code(201).header('location', `/users/${user.user_id}`).send(user);
    },
  );

  app.get(
    '/users/:user_id',
    {
      ...admin,
      schema: {
        ...adminDoc,
        summary: 'Get a user',
        params: UserIdParamsSchema,
        response: { 200: userRef, ...problemResponses(401, 403, 404, 422) },
      },
    },
    (request) => users.get(request.params.user_id),
  );

  app.patch(
    '/users/:user_id',
    {
      ...admin,
      schema: {
        ...adminDoc,
        summary: 'Rename, activate or deactivate, promote or demote a user',
        description:
          'Deactivating ends every login of the user at once. The last active superuser can be ' +
          'neither demoted nor deactivated (409).',
        params: UserIdParamsSchema,
        body: UserUpdateSchema,
        response: { 200: userRef, ...problemResponses(401, 403, 404, 409, 422) },
      },
    },
    (request) => users.update(request.params.user_id, request.body, actorOf(request)),
  );

  app.delete(
    '/users/:user_id',
    {
      ...admin,
      schema: {
        ...adminDoc,
        summary: 'Delete a user',
        description: 'Its logins end with it. The last active superuser cannot be deleted (409).',
        params: UserIdParamsSchema,
        response: { 204: noContent, ...problemResponses(401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      await users.delete(request.params.user_id, actorOf(request));
      return reply.code(204).send(null);
    },
  );
};
