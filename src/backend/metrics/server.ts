// The metrics port (MYAPI_METRICS__PORT): GET /metrics on its own listener, 127.0.0.1 by default.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { METRICS_PATH, type Scrape } from './http.js';

export interface MetricsListener {
  /** Where Prometheus scrapes, e.g. http://127.0.0.1:9464/metrics. */
  url: string;
  close(): Promise<void>;
}

function problem(response: ServerResponse, status: number, title: string, detail: string): void {
  response.writeHead(status, { 'content-type': 'application/problem+json' });
  response.end(JSON.stringify({ type: 'about:blank', title, status, detail }));
}

/**
 * A plain node:http server apart from the API's: it has none of the API's hooks, so a scrape is
 * not itself a request in the figures, and it answers while the API port is saturated. Nothing
 * but GET (and HEAD) /metrics is served.
 */
export async function listenMetrics(
  host: string,
  port: number,
  scrape: Scrape,
): Promise<MetricsListener> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== METRICS_PATH) {
      problem(response, 404, 'Not Found', `Only ${METRICS_PATH} is served on this port`);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      problem(response, 405, 'Method Not Allowed', `${METRICS_PATH} answers GET`);
      return;
    }
    scrape().then(
      ({ contentType, body }) => {
        response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : body);
      },
      () => {
        response.setHeader('retry-after', '1');
        problem(response, 503, 'Service Unavailable', 'The metrics could not be gathered; retry');
      },
    );
  });
  // A scrape every few seconds: connections idle longer than that are not worth keeping.
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    const refuse = (error: Error) => {
      reject(new Error(`MYAPI_METRICS__PORT: cannot listen on ${host}:${port} (${error.message})`));
    };
    server.once('error', refuse);
    server.listen(port, host, () => {
      server.off('error', refuse);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}${METRICS_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
