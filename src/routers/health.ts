/** HTTP routes of the liveness and readiness probes. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Tags } from '../const.js';
import { HealthSchema, ReadySchema } from '../schemas/health.js';
import { problemResponses } from '../schemas/problem.js';
import type { Services } from '../services/index.js';

export const healthRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  app.get(
    '/health',
    {
      logLevel: 'warn',
      schema: {
        tags: [Tags.operations],
        summary: 'Liveness: the process is up',
        response: { 200: { ...HealthSchema, description: 'The process is up' } },
      },
    },
    () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      logLevel: 'warn',
      schema: {
        tags: [Tags.operations],
        summary: 'Readiness: the database answers a round trip',
        response: {
          200: { ...ReadySchema, description: 'Ready to serve' },
          ...problemResponses(503),
        },
      },
    },
    async () => {
      await services.health.checkReady();
      return { status: 'ready' as const, database: 'ok' as const };
    },
  );
};
