// Request metrics on every route, and GET /metrics on the API's port when a token protects it.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ServiceUnavailableError, UnauthorizedError } from '../../exc.js';
import type { PrometheusMetrics } from './registry.js';

/** The text a scrape answers, and its content type (Prometheus' text format 0.0.4). */
export interface Exposition {
  contentType: string;
  body: string;
}

export type Scrape = () => Promise<Exposition>;

/** A scrape of this process's own registry. */
export function scrapeOf(metrics: PrometheusMetrics): Scrape {
  return async () => ({
    contentType: metrics.registry.contentType,
    body: await metrics.registry.metrics(),
  });
}

export const METRICS_PATH = '/metrics';
/** Requests no route matched: one label value, whatever their URL. */
const UNMATCHED = 'unmatched';

export interface MetricsRouteOptions {
  /** MYAPI_METRICS__TOKEN: serve GET /metrics here to holders of this bearer token. */
  token: string | undefined;
  /** What GET /metrics answers: this process's figures, or (in a worker) every worker's. */
  scrape: Scrape;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** The bearer check in constant time: both sides hashed to one length first. */
function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header ?? '');
  return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected);
}

/**
 * Registered first at the root (fastify-plugin), so every request is counted, refusals of other
 * hooks included. The response's 'close' comes once for every request, answered or abandoned, so
 * the in-flight figure cannot drift; the route label is the route's pattern as Fastify writes it
 * (`/movies/:movie_id`), never the URL, so its values stay as few as the routes.
 */
async function requestMetrics(
  app: FastifyInstance,
  options: { prometheus: PrometheusMetrics },
): Promise<void> {
  const metrics = options.prometheus;
  const histogram = metrics.requestDuration;
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done) => {
    metrics.requestBegun();
    const response = reply.raw;
    response.once('close', () => {
      metrics.requestFinished();
      histogram.observe(
        {
          route: request.routeOptions.url ?? UNMATCHED,
          method: request.method,
          status_code: response.statusCode,
        },
        reply.elapsedTime / 1000,
      );
    });
    done();
  });
}

/** Counts and times every request: registered before every other hook of the app. */
export const requestMetricsPlugin = fp(requestMetrics, { name: 'myapi-metrics' });

/**
 * GET /metrics on the API's port, for holders of MYAPI_METRICS__TOKEN (absent without one). Not
 * in the OpenAPI document: it is the operators' route, not the clients'.
 */
export async function metricsRoute(
  app: FastifyInstance,
  options: MetricsRouteOptions,
): Promise<void> {
  const { token, scrape } = options;
  if (token === undefined) return;
  const expected = digest(token);
  app.get(METRICS_PATH, { schema: { hide: true }, logLevel: 'warn' }, async (request, reply) => {
    const { authorization } = request.headers;
    if (!bearerMatches(authorization, expected)) {
      throw new UnauthorizedError(
        authorization === undefined ? 'Not authenticated' : 'Wrong metrics token',
        authorization !== undefined,
      );
    }
    let exposition: Exposition;
    try {
      exposition = await scrape();
    } catch (error) {
      throw new ServiceUnavailableError('The metrics could not be gathered; retry', error, 1);
    }
    return reply.type(exposition.contentType).send(exposition.body);
  });
}
