/** HTTP routes of self-service accounts: sign-up, invitations, email verification, password reset. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  AcceptedSchema,
  EmailBodySchema,
  EmailChangeSchema,
  InvitationCreateSchema,
  InvitationSchema,
  ResetConfirmSchema,
  SignupSchema,
  TokenBodySchema,
} from '../schemas/accounts.js';
import { problemResponses } from '../schemas/problem.js';
import type { Services } from '../services/index.js';
import { bearerSecurity, principalOf, requireScopes } from './deps.js';
import { USERS_ADMIN, USERS_TAG } from '../services/users_definition.js';

const noContent = { type: 'null', description: 'Done' } as const;
const CHECK_MAILBOX = 'Check your mailbox: a mail is on its way to the address you gave';
const tags = [USERS_TAG];

export const accountsRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  const { auth } = services;
  const { signup, email, passwordReset } = services.selfService;

  app.post(
    '/users/signup',
    {
      schema: {
        tags,
        summary: 'Sign up',
        description:
          'Governed by MYAPI_SIGNUP: `closed` (403), `open`, or `invite` (an `invitation` code ' +
          'is required). The password must pass the password policy (422). A confirmation link ' +
          'is mailed; with an invitation the address counts as confirmed. For an address that ' +
          'has an account, the answer is the same and its owner is mailed instead. Repeated ' +
          'requests for one address or from one client wait longer each time (429).',
        body: SignupSchema,
        response: { 202: AcceptedSchema, ...problemResponses(400, 403, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      await signup.signup(request.body, { address: request.ip });
      return reply.code(202).send({ detail: CHECK_MAILBOX });
    },
  );

  app.post(
    '/users/invitations',
    {
      onRequest: requireScopes(auth, USERS_ADMIN),
      schema: {
        tags,
        security: bearerSecurity(USERS_ADMIN),
        summary: 'Invite someone to sign up',
        description:
          'Mails a single-use invitation code (valid MYAPI_ACCOUNTS__INVITATION_DAYS). 409 when ' +
          'the address has an account or sign-up is closed.',
        body: InvitationCreateSchema,
        response: { 201: InvitationSchema, ...problemResponses(401, 403, 409, 422) },
      },
    },
    async (request, reply) => reply.code(201).send(await signup.invite(request.body.email)),
  );

  app.post(
    '/users/verify-email',
    {
      schema: {
        tags,
        summary: 'Confirm an email address with the mailed code',
        description:
          "A sign-up's code confirms the address. An address change's code makes the new " +
          "address the account's, ends every login and tells the old address; 409 when " +
          'another account took the address meanwhile. 400 for a code that is unknown, expired ' +
          'or used.',
        body: TokenBodySchema,
        response: { 204: noContent, ...problemResponses(400, 409, 422) },
      },
    },
    async (request, reply) => {
      await email.verify(request.body.token);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/users/verify-email/resend',
    {
      schema: {
        tags,
        summary: 'Mail a new confirmation code',
        description:
          'One mail goes to the address whatever its state (a new code, "already confirmed" ' +
          'or "no account"), and the answer is the same. Repeated requests wait longer (429).',
        body: EmailBodySchema,
        response: { 202: AcceptedSchema, ...problemResponses(422, 429) },
      },
    },
    async (request, reply) => {
      await email.resend(request.body.email, { address: request.ip });
      return reply.code(202).send({ detail: CHECK_MAILBOX });
    },
  );

  app.post(
    '/users/me/email',
    {
      onRequest: requireScopes(auth),
      schema: {
        tags,
        security: bearerSecurity(),
        summary: 'Change your email address',
        description:
          'Needs the current password (403 when wrong; wrong ones count towards the login ' +
          'throttle, 429). A confirmation code goes to the new address; the account keeps its ' +
          'address until it is used (POST /users/verify-email).',
        body: EmailChangeSchema,
        response: { 202: AcceptedSchema, ...problemResponses(401, 403, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      await email.changeEmail(principalOf(request), request.body, { address: request.ip });
      return reply.code(202).send({ detail: CHECK_MAILBOX });
    },
  );

  app.post(
    '/users/password-reset',
    {
      schema: {
        tags,
        summary: 'Forgotten password: mail a reset code',
        description:
          'The answer and its time are the same whether or not the address has an account ' +
          '(which then gets a "no account" notice). The code works once, for ' +
          'MYAPI_ACCOUNTS__RESET_TOKEN_MINUTES (30 by default). Repeated requests wait longer (429).',
        body: EmailBodySchema,
        response: { 202: AcceptedSchema, ...problemResponses(422, 429) },
      },
    },
    async (request, reply) => {
      await passwordReset.request(request.body.email, { address: request.ip });
      return reply.code(202).send({ detail: CHECK_MAILBOX });
    },
  );

  app.post(
    '/users/password-reset/confirm',
    {
      schema: {
        tags,
        summary: 'Forgotten password: set a new one with the mailed code',
        description:
          'The password must pass the password policy (422; the code stays usable). Every login ' +
          'of the account ends and the user is mailed. 400 for a code that is unknown, expired ' +
          'or used; wrong codes count towards the login throttle (429).',
        body: ResetConfirmSchema,
        response: { 204: noContent, ...problemResponses(400, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      await passwordReset.confirm(request.body.token, request.body.password, {
        address: request.ip,
      });
      return reply.code(204).send(null);
    },
  );
};
