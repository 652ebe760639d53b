/** HTTP route of the security audit log: GET /audit (users:admin). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { InvalidInputError } from '../exc.js';
import { AuditListSchema, AuditQuerySchema } from '../schemas/audit.js';
import { problemResponses } from '../schemas/problem.js';
import type { Services } from '../services/index.js';
import { bearerSecurity, linkNextPage, requireScopes } from './deps.js';
import { USERS_ADMIN, USERS_TAG } from '../services/users_definition.js';

/** How often the server deletes events past the retention period. */
const PRUNE_INTERVAL_MS = 3_600_000;

/** An instant of the query as a Date; a date-time PostgreSQL cannot hold (a leap second) is 422. */
function instant(field: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new InvalidInputError(`${field} is not a time this API can use`, [
      { field: `querystring.${field}`, message: 'must be a valid date-time' },
    ]);
  }
  return date;
}

export const auditRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  const { audit, auth } = services;

  // Retention: the server prunes at start and then hourly; a failed prune waits for the next.
  let timer: NodeJS.Timeout | undefined;
  const prune = () => {
    audit.prune().then(
      (deleted) => {
        if (deleted > 0) app.log.info({ deleted }, 'audit events past retention deleted');
      },
      (error: unknown) => {
        app.log.warn({ err: error }, 'audit prune failed; retrying within the hour');
      },
    );
  };
  app.addHook('onReady', (done) => {
    prune();
    timer = setInterval(prune, PRUNE_INTERVAL_MS).unref();
    done();
  });
  app.addHook('onClose', (_instance, done) => {
    clearInterval(timer);
    done();
  });

  app.get(
    '/audit',
    {
      onRequest: requireScopes(auth, USERS_ADMIN),
      schema: {
        tags: [USERS_TAG],
        security: bearerSecurity(USERS_ADMIN),
        summary: 'The security audit log, newest first, a page at a time',
        description:
          'Logins and their failures, throttle refusals, refresh-token reuse, revocations, ' +
          'password changes, two-factor events and admin actions on users (with the actor). ' +
          'Keyset pagination: the `Link: <...>; rel="next"` header holds the next page, absent ' +
          'on the last. Events older than MYAPI_AUDIT__RETENTION_DAYS are deleted.',
        querystring: AuditQuerySchema,
        response: {
          200: { ...AuditListSchema, description: 'One page of events' },
          ...problemResponses(401, 403, 422),
        },
      },
    },
    async (request, reply) => {
      const { query } = request;
      const page = await audit.list(
        {
          userId: query.user_id,
          event: query.event,
          since: instant('since', query.since),
          until: instant('until', query.until),
          before: query.before,
        },
        query.limit,
      );
      linkNextPage(
        reply,
        request.url,
        page.next === undefined
          ? undefined
          : { limit: String(query.limit), before: String(page.next) },
      );
      return page.events;
    },
  );
};
