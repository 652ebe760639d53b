/** buildApp: the Fastify application (plugins, docs, error handling, routers), without listen(). */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import type { Database } from './backend/database.js';
import type { Settings } from './backend/config.js';
import { AccessLog } from './backend/logging.js';
import { activeTracing } from './backend/tracing.js';
import { drainPlugin, httpServerOptions } from './backend/http_server.js';
import { metricsRoute, requestMetricsPlugin } from './backend/metrics/http.js';
import type { ServerMetrics } from './backend/metrics/index.js';
import { securityPlugin } from './routers/security.js';
import { tracingPlugin } from './routers/tracing.js';
import {
  APP_NAME,
  BEARER_SCHEME,
  DOCS_PATH,
  OAUTH2_SCHEME,
  OPENAPI_PATH,
  TOKEN_URL,
  Tags,
} from './const.js';
import {
  clientErrorHandler,
  documentSharedErrors,
  errorHandler,
  notFoundHandler,
} from './routers/errors.js';
import { coreRouters, serviceRouters } from './routers/index.js';
import { useStrictValidation } from './routers/validation.js';
import { MovieSchema } from './schemas/movies.js';
import { ProblemSchema } from './schemas/problem.js';
import { TokenSchema } from './schemas/auth.js';
import { UserSchema } from './schemas/users.js';
import { AuditEventSchema } from './schemas/audit.js';
import { UserSessionSchema } from './schemas/user_sessions.js';
import { inProcessHashing, NicedHashing } from './backend/hashing.js';
import { accountOptions, createServices } from './services/index.js';
import { serviceDefinitions } from './services/registry.js';
import { SCOPE_DESCRIPTIONS } from './services/scopes.js';
import { createMailSender } from './services/mail/index.js';
import { openTokenKeys } from './services/keys/setup.js';
import { wellKnownRouter } from './routers/well_known.js';
import { parseTrustedIssuers, type TrustedIssuer } from './backend/trusted_issuers.js';
import { VERSION } from './version.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export interface AppOptions {
  settings: Settings;
  database: Database;
  /** The HS256 secret: MYAPI_TOKEN_KEY, or an older embedded installation's key file. */
  tokenKey?: string | undefined;
  /** What encrypts the signing key set at rest (backend/keys_secret.ts). */
  keysSecret?: string | undefined;
  /** The process's logger (backend/logging.ts); tests pass one that writes where they read. */
  logger: Logger;
  /** The server's metrics (backend/metrics/), when MYAPI_METRICS__* turn them on. */
  metrics?: ServerMetrics;
}

/** A client's X-Request-Id is kept when it is sane, so logs can be joined across services. */
function requestId(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * Fastify's trustProxy from MYAPI_TRUST_PROXY (validated by config.ts): true, false, or the proxies'
 * addresses/CIDRs. request.ip is then the nearest X-Forwarded-For hop not sent by a trusted proxy;
 * a peer that is not a trusted proxy is the client, whatever headers it sends.
 */
function trustProxy(value: string): boolean | string[] {
  const trimmed = value.trim();
  if (trimmed === 'true' || trimmed === 'false') return trimmed === 'true';
  return trimmed.split(',').map((part) => part.trim());
}

/** MYAPI_TRUSTED_ISSUERS, which loadSettings has checked. */
function trustedIssuers(settings: Settings): TrustedIssuer[] {
  const parsed = parseTrustedIssuers(settings.trusted_issuers);
  if (typeof parsed === 'string') throw new Error(`MYAPI_TRUSTED_ISSUERS: ${parsed}`);
  return parsed;
}

export async function buildApp(options: AppOptions) {
  const { settings, database } = options;
  const app = Fastify({
    loggerInstance: options.logger,
    genReqId: requestId,
    // Behind a proxy every client has the proxy's address; the login throttle needs the real one.
    trustProxy: trustProxy(settings.trust_proxy),
    logController: new AccessLog(),
    // Errors of Node's HTTP parser and of Fastify's router answer as problem documents too.
    clientErrorHandler,
    frameworkErrors: errorHandler,
    ...httpServerOptions(settings),
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Traces, when OTEL_* turned them on (backend/tracing.ts): first, so every hook runs in the span.
  const tracing = activeTracing();
  if (tracing !== undefined) await app.register(tracingPlugin, { tracing });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  app.addHook('onRoute', documentSharedErrors);
  const { metrics } = options;
  // First, so that every request is counted, those the later hooks refuse included.
  if (metrics !== undefined) await app.register(requestMetricsPlugin, metrics);
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
  // Shared schemas are added here, before the strict validator: one added inside a plugin would
  // give that plugin Fastify's default validator, which coerces "Infinity" into a number.
  app.addSchema(AuditEventSchema);
  app.addSchema(UserSessionSchema);
  useStrictValidation(app);

  await app.register(formbody);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: APP_NAME,
        version: VERSION,
        description:
          'Movies API with OAuth2 password login. Click **Authorize**, log in with your email ' +
          'and password (client id and secret stay empty), or paste a personal access token ' +
          'into the HTTPBearer box, then try the Movies routes.',
      },
      tags: [
        { name: Tags.auth, description: 'OAuth2 password and refresh grants, and logout' },
        ...serviceDefinitions.map(({ tag }) => tag),
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
          // Swagger UI's box for a token from elsewhere: every protected route takes either.
          [BEARER_SCHEME]: {
            type: 'http',
            scheme: 'bearer',
            description:
              'Paste a personal access token (`myapi_pat_...`, from POST /users/me/tokens or ' +
              '`myapi tokens create`) or any access token: one of this server, or of a trusted ' +
              'issuer (MYAPI_TRUSTED_ISSUERS). It must carry the scopes the route needs.',
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
  const signing = await openTokenKeys(database, settings, {
    tokenKey: options.tokenKey,
    keysSecret: options.keysSecret,
    log: app.log,
  });
  app.addHook('onClose', (_instance, done) => {
    signing.ring?.close();
    done();
  });
  // openTokenKeys has refused to go on without one of the two.
  const sealingSecret = options.tokenKey ?? options.keysSecret ?? '';
  metrics?.prometheus.watchDatabase(database);
  const services = createServices(database, {
    accounts: { ...accounts, passwords: { ...accounts.passwords, functions: hashing } },
    tokens: {
      keys: signing.keys,
      sealingSecret,
      expireMinutes: settings.token_expire_minutes,
      trustedIssuers: trustedIssuers(settings),
    },
    ...(metrics === undefined ? {} : { metrics: metrics.prometheus }),
  });
  // Runs before the hashing process closes (onClose hooks run last-added first): a login whose
  // client has gone is still checked and counted, not cut off holding its throttle places.
  app.addHook('onClose', async () => {
    const withinMs = settings.http.shutdown_timeout_ms;
    await Promise.all([services.auth.settled(withinMs), services.throttle.settled(withinMs)]);
  });
  for (const router of [...coreRouters, ...(await serviceRouters())]) {
    await app.register(router, { services });
  }
  // The outbox's mails leave from every server process (services/mail/); never from a request.
  const mailSender = createMailSender(settings, database, options.logger);
  app.addHook('onReady', () => {
    mailSender.start();
    return Promise.resolve();
  });
  app.addHook('onClose', () => mailSender.stop());
  await app.register(wellKnownRouter, { settings, ring: signing.ring });
  if (metrics !== undefined) await app.register(metricsRoute, metrics);
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
