// The HTTP server's time limits for slow clients, and its drain at shutdown.
import type { ServerOptions } from 'node:http';
import { Server as NetServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Settings } from './config.js';
import { ServiceUnavailableError } from '../exc.js';

/** Fastify's server options from MYAPI_HTTP__*: every phase of a request has a bound. */
export function httpServerOptions(settings: Settings): {
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionTimeout: number;
  http: ServerOptions;
  return503OnClosing: boolean;
} {
  const { request_timeout_ms, headers_timeout_ms, keep_alive_timeout_ms, connection_timeout_ms } =
    settings.http;
  // Node refuses a headers timeout longer than the request's; the request's then bounds both.
  const headersTimeout = Math.min(headers_timeout_ms, request_timeout_ms);
  return {
    requestTimeout: request_timeout_ms,
    keepAliveTimeout: keep_alive_timeout_ms,
    connectionTimeout: connection_timeout_ms,
    http: {
      headersTimeout,
      requestTimeout: request_timeout_ms,
      // Node checks both timeouts only this often (30 s by default), which would add to them.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
    },
    // The drain below answers instead, in the API's error format.
    return503OnClosing: false,
  };
}

/** The servers that are draining (a WeakSet: a closed app leaves nothing behind). */
const draining = new WeakSet<object>();

/**
 * While the server drains, a request that arrives on an open connection gets 503 (problem+json,
 * Retry-After) and every response says Connection: close, so clients move elsewhere instead of
 * writing their next request into a socket that is about to close.
 */
async function drain(app: FastifyInstance): Promise<void> {
  app.addHook('onRequest', (_request, _reply, done) => {
    if (draining.has(app.server)) {
      done(new ServiceUnavailableError('The server is shutting down: retry', undefined, 1));
      return;
    }
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining.has(app.server)) void reply.header('connection', 'close');
    done(null, payload);
  });
}

/** Registered at the root (fastify-plugin) after the security headers, so 503s carry them too. */
export const drainPlugin = fp(drain, { name: 'myapi-drain' });

interface Closable {
  server: NetServer;
  close(): PromiseLike<unknown>;
}

function openConnections(app: Closable): Promise<number> {
  return new Promise((resolve) => {
    app.server.getConnections((error, count) => {
      resolve(error ? 0 : count);
    });
  });
}

/**
 * Stops accepting connections, then for up to `drainMs` answers what arrives on the open ones
 * (see registerDrain) until they have all closed; then Fastify's close waits for requests still
 * in flight and closes what stays idle. Closing idle keep-alive connections at once instead (what
 * http.Server#close does) resets the requests their clients are writing at that moment.
 */
export async function drainAndClose(app: Closable, drainMs: number): Promise<void> {
  draining.add(app.server);
  if (app.server.listening) {
    // net.Server's close stops the listener only; http.Server's would also drop idle sockets.
    NetServer.prototype.close.call(app.server, () => undefined);
  }
  const deadline = Date.now() + drainMs;
  while (Date.now() < deadline && (await openConnections(app)) > 0) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await app.close();
}
