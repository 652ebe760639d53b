/**
 * The routers the application registers: the core ones (probes, logins), then one per
 * registered service (services/registry.ts), found by its name as routers/<name>.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Services } from '../services/index.js';
import { serviceDefinitions } from '../services/registry.js';
import { accessTokensRouter } from './access_tokens.js';
import { accountsRouter } from './accounts.js';
import { auditRouter } from './audit.js';
import { authRouter } from './auth.js';
import { healthRouter } from './health.js';
import { introspectionRouter } from './introspection.js';
import { mfaRouter } from './mfa.js';
import { userSessionsRouter } from './user_sessions.js';

export type ServiceRouter = FastifyPluginAsyncTypebox<{ services: Services }>;

/** The routers every application has, whatever services it registers. */
export const coreRouters: ServiceRouter[] = [
  healthRouter,
  authRouter,
  introspectionRouter,
  accountsRouter,
  accessTokensRouter,
  userSessionsRouter,
  mfaRouter,
  auditRouter,
];

/** Each registered service's router: routers/<name>.ts exports it as `router`. */
export async function serviceRouters(): Promise<ServiceRouter[]> {
  return Promise.all(
    serviceDefinitions.map(async ({ name }) => {
      const module = (await import(`./${name}.js`)) as { router?: ServiceRouter };
      if (typeof module.router !== 'function') {
        throw new Error(`routers/${name}.ts must export the service's router as \`router\``);
      }
      return module.router;
    }),
  );
}
