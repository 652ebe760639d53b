// Browser-facing safety for every response: security headers, CORS by allow-list, no-store.
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Settings } from '../backend/config.js';

/** The methods and request headers the API's operations use, for CORS preflight. */
const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const CORS_REQUEST_HEADERS = [
  'Authorization',
  'Content-Type',
  'If-Match',
  'If-None-Match',
  'X-Request-Id',
];
/** Response headers a script on another origin needs: concurrency, paging, errors, retries. */
const CORS_EXPOSED_HEADERS = [
  'ETag',
  'Location',
  'Link',
  'Retry-After',
  'WWW-Authenticate',
  'X-Request-Id',
  'X-Total-Count',
];

/** MYAPI_CORS__ORIGINS as a list; empty means CORS is off. */
export function corsOrigins(settings: Settings): string[] {
  return settings.cors.origins
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '');
}

/**
 * Headers from the OWASP REST security cheat sheet: nosniff, a Referrer-Policy, no framing
 * (X-Frame-Options and CSP frame-ancestors), and Cache-Control: no-store on anything answered
 * to a request with credentials. The docs' own CSP (set by @fastify/swagger-ui on its routes)
 * replaces the API's strict one there, so Swagger UI keeps working.
 */
async function security(app: FastifyInstance, { settings }: { settings: Settings }): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // same-origin would stop a page of an allowed origin from reading answers in some browsers.
    crossOriginResourcePolicy: {
      policy: corsOrigins(settings).length > 0 ? 'cross-origin' : 'same-origin',
    },
  });

  const origins = corsOrigins(settings);
  if (origins.length > 0) {
    await app.register(cors, {
      origin: origins,
      methods: CORS_METHODS,
      allowedHeaders: CORS_REQUEST_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      // Bearer tokens, not cookies: no credentialed CORS.
      credentials: false,
      maxAge: 600,
    });
  }

  app.addHook('onSend', (request, reply, payload, done) => {
    if (request.headers.authorization !== undefined) {
      void reply.header('cache-control', 'no-store');
    }
    done(null, payload);
  });
}

/** Registered at the root (fastify-plugin): its hooks cover every route, the docs included. */
export const securityPlugin = fp(security, { name: 'myapi-security' });
