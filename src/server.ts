// Starts the HTTP server on an opened database and stops it gracefully on signals.
import cluster from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import type { Logger } from 'pino';
import { buildApp, type App } from './app.js';
import type { Settings } from './backend/config.js';
import { openDatabase, resolveTokenKey, type Database } from './backend/database.js';
import { createLogger } from './backend/logging.js';
import { resolveKeysSecret } from './backend/keys_secret.js';
import { stopTracing } from './backend/tracing.js';
import { drainAndClose } from './backend/http_server.js';
import { prepareDatabase } from './prepare.js';
import { DOCS_PATH } from './const.js';

const metricsWanted = (settings: Settings): boolean =>
  settings.metrics.port !== undefined || settings.metrics.token !== undefined;

export interface RunningServer {
  app: App;
  database: Database;
  url: string;
  /** Where Prometheus scrapes this process (MYAPI_METRICS__PORT), when it serves one. */
  metricsUrl: string | undefined;
  /** MYAPI_HTTP__SHUTDOWN_TIMEOUT_MS: how long a graceful stop may take. */
  shutdownTimeoutMs: number;
  close(): Promise<void>;
}

export async function startServer(
  settings: Settings,
  logger: Logger = createLogger(settings.log_level),
): Promise<RunningServer> {
  const database = await openDatabase(settings, { role: 'server', command: 'myapi serve' });
  try {
    if (database.dsn.kind === 'pglite') {
      logger.info(
        `using the embedded database ${database.label} (set MYAPI_DATABASE__DSN for a PostgreSQL server)`,
      );
    }
    await prepareDatabase(database, logger);
    const tokenKey = resolveTokenKey(settings, database.dsn, logger);
    const keysSecret = resolveKeysSecret(settings, database.dsn, logger);
    // Loaded only when asked for: without metrics, prom-client is never imported.
    const metricsModule = metricsWanted(settings)
      ? await import('./backend/metrics/index.js')
      : undefined;
    const metrics = metricsModule?.serverMetrics(settings);
    const app = await buildApp({
      settings,
      database,
      tokenKey,
      keysSecret,
      logger,
      ...(metrics === undefined ? {} : { metrics }),
    });
    // A worker's figures are served by its primary (cluster.ts), on the one metrics port. The
    // metrics port opens first: when it is taken, the start fails before the API listens.
    const { port: metricsPort, host: metricsHost } = settings.metrics;
    const metricsListener =
      metrics !== undefined && metricsPort !== undefined && !cluster.isWorker
        ? await metricsModule?.listenMetrics(metricsHost, metricsPort, metrics.scrape)
        : undefined;
    let address: string;
    try {
      address = await app.listen({ host: settings.host, port: settings.port });
    } catch (error) {
      await metricsListener?.close();
      throw error;
    }
    const url = address.replace('0.0.0.0', '127.0.0.1');
    logger.info(`myapi is serving at ${url} (interactive docs: ${url}${DOCS_PATH})`);
    if (metricsListener !== undefined) logger.info(`metrics at ${metricsListener.url}`);
    return {
      app,
      database,
      url,
      metricsUrl: metricsListener?.url,
      shutdownTimeoutMs: settings.http.shutdown_timeout_ms,
      async close() {
        // Stop accepting, answer 503 with Connection: close on open connections while in-flight
        // requests finish (backend/http_server.ts); then the pool (and an embedded database).
        await drainAndClose(app, settings.http.drain_ms);
        await metricsListener?.close();
        await database.close();
        // The spans of the last requests are exported before the process ends.
        await stopTracing();
      },
    };
  } catch (error) {
    await database.close().catch(() => undefined);
    throw error;
  }
}

/** What a cluster's primary sends its workers to stop them gracefully. */
export const STOP_MESSAGE = 'myapi:stop';

/** Signals close-with-grace would catch that mean a crash, not a request to stop: left alone. */
const CRASH_SIGNALS = ['SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV'] as const;

/**
 * SIGTERM, SIGINT (and SIGHUP, SIGQUIT, SIGUSR2) finish in-flight requests, close the database,
 * then exit; twice forces; an uncaught error stops the same way with exit code 1
 * (close-with-grace, bounded by MYAPI_HTTP__SHUTDOWN_TIMEOUT_MS).
 *
 * A cluster worker is stopped by its primary, with STOP_MESSAGE, and forced by it when it takes
 * too long. The signal that stopped the primary often reaches the workers too: Ctrl-C and
 * systemd (KillMode=control-group) signal the whole group. So in a worker a SIGTERM and the
 * message start the same one graceful stop, repeats change nothing, and SIGINT is the primary's.
 */
export function closeOnSignals(server: RunningServer, logger: Logger): void {
  let stopping: Promise<void> | undefined;
  const worker = cluster.isWorker;
  const { close } = closeWithGrace(
    {
      delay: server.shutdownTimeoutMs,
      logger: {
        error: (message: unknown) => {
          logger.error({ err: message }, 'error while stopping');
        },
      },
      skip: worker ? [...CRASH_SIGNALS, 'SIGTERM', 'SIGINT'] : [...CRASH_SIGNALS],
      onSecondSignal: (signal) => {
        logger.warn(`${signal} again: exiting now`);
      },
      onSecondError: (error) => {
        logger.fatal({ err: error }, 'uncaught error while stopping: exiting now');
      },
      onTimeout: () => {
        logger.error('shutdown took too long: exiting');
      },
    },
    async ({ signal, err }) => {
      if (err !== undefined) logger.fatal({ err }, 'uncaught error: stopping');
      else if (signal !== undefined)
        logger.info(`${signal} received: finishing in-flight requests`);
      // In a worker the message and a signal may both ask: one stop serves both.
      stopping ??= server.close();
      await stopping;
      logger.info('stopped');
    },
  );
  if (!worker) return;
  const once = (reason: string) => {
    if (stopping === undefined) logger.info(`${reason}: finishing in-flight requests`);
    close();
  };
  process.on('SIGTERM', () => {
    once('SIGTERM received');
  });
  process.on('SIGINT', () => undefined);
  process.on('message', (message) => {
    if (message === STOP_MESSAGE) once('stop asked by the primary');
  });
}
