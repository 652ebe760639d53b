import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Database } from '../backend/database.js';
import { DatabaseUnavailableError } from '../backend/database.js';
import { Tags } from '../const.js';
import { ServiceUnavailableError } from '../exc.js';
import { HealthSchema, ReadySchema } from '../schemas/health.js';
import { problemResponses } from '../schemas/problem.js';

export const healthRouter: FastifyPluginAsyncTypebox<{ database: Database }> = async (
  app,
  { database },
) => {
  app.get(
    '/health',
    {
      logLevel: 'warn',
      schema: {
        tags: [Tags.operations],
        summary: 'Liveness: the process is up',
        response: { 200: HealthSchema },
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
        response: { 200: ReadySchema, ...problemResponses(503) },
      },
    },
    async () => {
      try {
        await database.ping();
      } catch (error) {
        throw new ServiceUnavailableError(
          'Database unavailable',
          new DatabaseUnavailableError(database.label, error),
        );
      }
      return { status: 'ready' as const, database: 'ok' as const };
    },
  );
};
