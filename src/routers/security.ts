// Browser-facing safety for every response: security headers, CORS by allow-list, no-store.
import { IncomingMessage, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';
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
 * The headers helmet sets for `options`, computed once. None of the options used depends on the
 * request (no CSP nonces), so every response gets the same set; @fastify/helmet would build
 * helmet's middleware anew and set each header on every request.
 */
function helmetHeaders(options: Readonly<HelmetOptions>): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader(name: string) {
      // Only X-Powered-By, which neither Node nor Fastify sets.
      Reflect.deleteProperty(headers, name.toLowerCase());
    },
  };
  // No option here reads the request: an unconnected one stands in for it.
  helmet(options)(
    new IncomingMessage(new Socket()),
    response as unknown as ServerResponse,
    (error) => {
      if (error !== undefined)
        throw error instanceof Error ? error : new Error('helmet refused its options');
    },
  );
  return headers;
}

/**
 * Headers from the OWASP REST security cheat sheet: nosniff, a Referrer-Policy, no framing
 * (X-Frame-Options and CSP frame-ancestors), and Cache-Control: no-store on anything answered
 * to a request with credentials. The docs' own CSP (set by @fastify/swagger-ui on its routes)
 * replaces the API's strict one there, so Swagger UI keeps working.
 */
async function security(app: FastifyInstance, { settings }: { settings: Settings }): Promise<void> {
  const headers = helmetHeaders({
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
  // On the reply (not the raw response): a route's own header, such as the docs' CSP, replaces it.
  app.addHook('onRequest', (_request, reply, done) => {
    void reply.headers(headers);
    done();
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
