// The server's metrics, built only when MYAPI_METRICS__PORT or MYAPI_METRICS__TOKEN asks for them.
import cluster from 'node:cluster';
import type { Settings } from '../config.js';
import { scrapeOf, type Scrape } from './http.js';
import { workerScrape } from './cluster.js';
import { PrometheusMetrics } from './registry.js';

export { clusterScrape } from './cluster.js';
export { listenMetrics, type MetricsListener } from './server.js';
export type { Scrape } from './http.js';
export { PrometheusMetrics } from './registry.js';

/** What buildApp takes to count requests and serve the token-protected route. */
export interface ServerMetrics {
  prometheus: PrometheusMetrics;
  scrape: Scrape;
  token: string | undefined;
}

export function metricsWanted(settings: Settings): boolean {
  return settings.metrics.port !== undefined || settings.metrics.token !== undefined;
}

/** This process's registry; in a worker of `serve --workers`, its scrape asks the primary. */
export function serverMetrics(settings: Settings): ServerMetrics {
  const prometheus = new PrometheusMetrics();
  const scrape = cluster.isWorker ? workerScrape(prometheus) : scrapeOf(prometheus);
  return { prometheus, scrape, token: settings.metrics.token };
}
