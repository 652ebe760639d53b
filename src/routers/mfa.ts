/** HTTP routes of two-factor authentication (TOTP) for your own account. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  CodeSchema,
  EnrolmentSchema,
  MfaStatusSchema,
  RecoveryCodesSchema,
} from '../schemas/mfa.js';
import { problemResponses } from '../schemas/problem.js';
import type { Services } from '../services/index.js';
import { clientOf } from './client.js';
import { bearerSecurity, principalOf, requireScopes } from './deps.js';
import { USERS_TAG } from '../services/users_definition.js';

const noContent = { type: 'null', description: 'Done' } as const;

export const mfaRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  const { mfa, auth } = services;
  const self = { onRequest: requireScopes(auth) };
  const doc = { tags: [USERS_TAG], security: bearerSecurity() };

  app.get(
    '/users/me/mfa',
    {
      ...self,
      schema: {
        ...doc,
        summary: 'Is two-factor authentication on for your account?',
        response: {
          200: { ...MfaStatusSchema, description: 'The status' },
          ...problemResponses(401),
        },
      },
    },
    async (request) => {
      const { userId } = principalOf(request);
      return {
        enabled: await mfa.enrolled(userId),
        recovery_codes_left: await mfa.unusedRecoveryCodes(userId),
      };
    },
  );

  app.post(
    '/users/me/mfa/totp',
    {
      ...self,
      schema: {
        ...doc,
        summary: 'Start two-factor enrolment: a TOTP secret as a URI and a QR code',
        description:
          'Scan the QR code (or type the secret) into an authenticator app, then confirm with ' +
          'a first code at POST /users/me/mfa/totp/confirm. Until then logins are unchanged, ' +
          'and enrolling again replaces the secret. 409 when two-factor is already on.',
        response: {
          201: { ...EnrolmentSchema, description: 'The new secret, shown only now' },
          ...problemResponses(401, 409),
        },
      },
    },
    async (request, reply) => {
      const { userId, email } = principalOf(request);
      return reply.code(201).send(await mfa.enrol({ userId, email }, clientOf(request)));
    },
  );

  app.post(
    '/users/me/mfa/totp/confirm',
    {
      ...self,
      schema: {
        ...doc,
        summary: 'Turn two-factor on with a first code; returns ten recovery codes',
        description:
          'From now on the password grant answers `mfa_required` with an `mfa_token`, and the ' +
          'login completes with a code (docs/authentication.md). Keep the recovery codes: each ' +
          'works once, and they are shown only now. A wrong code is 403; after five, each ' +
          'further one waits (429 with Retry-After).',
        body: CodeSchema,
        response: {
          200: { ...RecoveryCodesSchema, description: 'Two-factor is on' },
          ...problemResponses(401, 403, 404, 409, 422, 429),
        },
      },
    },
    async (request) => {
      const { userId } = principalOf(request);
      return {
        recovery_codes: await mfa.confirm(userId, request.body.code.trim(), clientOf(request)),
      };
    },
  );

  app.delete(
    '/users/me/mfa/totp',
    {
      ...self,
      schema: {
        ...doc,
        summary: 'Turn two-factor off (needs a code or a recovery code)',
        description: 'A wrong code is 403; after five, each further one waits (429).',
        body: CodeSchema,
        response: { 204: noContent, ...problemResponses(401, 403, 404, 422, 429) },
      },
    },
    async (request, reply) => {
      await mfa.disable(principalOf(request).userId, request.body.code, clientOf(request));
      return reply.code(204).send(null);
    },
  );
};
