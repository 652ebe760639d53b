import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { IncomingMessage } from 'node:http';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import type { Database } from './backend/database.js';
import { isDatabaseUnavailable } from './backend/database.js';
import type { Settings } from './backend/config.js';
import { AccessLog } from './backend/logging.js';
import { drainPlugin, httpServerOptions } from './backend/http_server.js';
import { securityPlugin } from './routers/security.js';
import {
  APP_NAME,
  DOCS_PATH,
  OAUTH2_SCHEME,
  OPENAPI_PATH,
  SCOPE_DESCRIPTIONS,
  TOKEN_URL,
  Tags,
} from './const.js';
import { errorHandler, notFoundHandler, ServiceUnavailableError } from './exc.js';
import { routers } from './routers/index.js';
import { MovieSchema } from './schemas/movies.js';
import { ProblemSchema } from './schemas/problem.js';
import { TokenSchema } from './schemas/auth.js';
import { UserSchema } from './schemas/users.js';
import { inProcessHashing, NicedHashing } from './backend/hashing.js';
import { loadAwareDutyCycle } from './backend/limiter.js';
import { createServices, type AccountOptions } from './services/index.js';

export const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export interface AppOptions {
  settings: Settings;
  database: Database;
  tokenKey: string;
  /** The process's logger (backend/logging.ts); tests pass one that writes where they read. */
  logger: Logger;
}

/** A client's X-Request-Id is kept when it is sane, so logs can be joined across services. */
function requestId(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** The account settings as the services take them; the CLI builds its account tools with it. */
export function accountOptions(settings: Settings): AccountOptions {
  return {
    refreshExpireDays: settings.refresh_token_expire_days,
    recheckSeconds: settings.token_recheck_seconds,
    passwordMinLength: settings.passwords.min_length,
    passwords: {
      upgradeLegacy: settings.passwords.upgrade_legacy,
      // Half the cores (at least one) hash; the rest keep serving reads and the database.
      concurrency:
        settings.passwords.concurrency ?? Math.max(1, Math.floor(availableParallelism() / 2)),
      maxQueued: settings.passwords.max_queued,
      // Hashing yields to the requests this process serves (backend/limiter.ts).
      dutyCycle: loadAwareDutyCycle(settings.passwords.duty_cycle),
    },
  };
}

/** Fastify's trustProxy from MYAPI_TRUST_PROXY: which X-Forwarded-For hops give request.ip. */
function trustProxy(
  value: string,
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (value === 'true' || value === 'false') return value === 'true';
  if (/^[0-9]+$/.test(value)) {
    const hops = Number(value);
    return (_address, hop) => hop < hops;
  }
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

export async function buildApp(options: AppOptions) {
  const { settings, database, tokenKey } = options;
  const app = Fastify({
    loggerInstance: options.logger,
    genReqId: requestId,
    // Behind a proxy every client has the proxy's address; the login throttle needs the real one.
    trustProxy: trustProxy(settings.trust_proxy),
    logController: new AccessLog(),
    // Unknown body fields are refused (422), never silently dropped: Fastify removes them by default.
    ajv: { customOptions: { allErrors: true, removeAdditional: false } },
    ...httpServerOptions(settings),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler((error, request, reply) => {
    // A lost database is the server's state, not a bug: 503 and a hint to retry.
    const mapped = isDatabaseUnavailable(error)
      ? new ServiceUnavailableError('Database unavailable', error)
      : error;
    errorHandler(mapped, request, reply);
  });
  app.setNotFoundHandler(notFoundHandler);
  await app.register(securityPlugin, { settings });
  await app.register(drainPlugin);
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    done();
  });

  app.addSchema(ProblemSchema);
  app.addSchema(MovieSchema);
  app.addSchema(TokenSchema);
  app.addSchema(UserSchema);

  await app.register(formbody);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: APP_NAME,
        version: VERSION,
        description:
          'Movies API with OAuth2 password login. Click **Authorize**, log in with your email ' +
          'and password (client id and secret stay empty), then try the Movies routes.',
      },
      tags: [
        { name: Tags.auth, description: 'OAuth2 password and refresh grants, and logout' },
        { name: Tags.movies, description: 'The movie catalogue (bearer token required)' },
        { name: Tags.users, description: 'Your account, and user administration (users:admin)' },
        { name: Tags.operations, description: 'Liveness and readiness probes' },
      ],
      components: {
        securitySchemes: {
          [OAUTH2_SCHEME]: {
            type: 'oauth2',
            flows: {
              password: { tokenUrl: TOKEN_URL, refreshUrl: TOKEN_URL, scopes: SCOPE_DESCRIPTIONS },
            },
          },
        },
      },
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
  });
  await app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    uiConfig: { persistAuthorization: false, validatorUrl: null, tryItOutEnabled: false },
    theme: { title: `${APP_NAME} API docs` },
    staticCSP: true,
    // The plugin's policy upgrades requests to https (a blank page over plain http anywhere but
    // localhost) and allows remote styles, fonts and the validator badge: the docs are offline.
    transformStaticCSP: (header) =>
      header
        .replace(/\s*upgrade-insecure-requests;?/, '')
        .replace(/ https:/g, '')
        .replace(/ validator\.swagger\.io/g, ''),
  });
  app.get(OPENAPI_PATH, { schema: { hide: true } }, () => app.swagger());

  // The server hashes passwords in a niced child process (backend/hashing.ts), unless told to
  // spare its memory (nice 0); the CLI, whose one hash competes with nothing, in its own.
  const hashing =
    settings.passwords.nice > 0 ? new NicedHashing(settings.passwords.nice) : inProcessHashing;
  app.addHook('onClose', () => hashing.close());
  const accounts = accountOptions(settings);
  const services = createServices(database, {
    tokenKey,
    tokenExpireMinutes: settings.token_expire_minutes,
    ...accounts,
    passwords: { ...accounts.passwords, functions: hashing },
  });
  for (const router of routers) await app.register(router, { services });
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
