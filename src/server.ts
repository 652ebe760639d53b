import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { buildApp, type App } from './app.js';
import type { Settings } from './backend/config.js';
import { openDatabase, resolveTokenKey, type Database } from './backend/database.js';
import { createLogger } from './backend/logging.js';
import { prepareDatabase } from './prepare.js';
import { DOCS_PATH } from './const.js';

export interface RunningServer {
  app: App;
  database: Database;
  url: string;
  close(): Promise<void>;
}

/** Grace for in-flight requests at shutdown before the process gives up on them. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

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
    const app = await buildApp({ settings, database, tokenKey, logger });
    const address = await app.listen({ host: settings.host, port: settings.port });
    const url = address.replace('0.0.0.0', '127.0.0.1');
    logger.info(`myapi is serving at ${url} (interactive docs: ${url}${DOCS_PATH})`);
    return {
      app,
      database,
      url,
      async close() {
        // Fastify stops accepting, answers 503 to new requests on open connections, and waits
        // for in-flight requests; then the pool (and an embedded database) closes. A keep-alive
        // connection whose request was in flight turns idle only after its response, which
        // server.close() does not wait for: sweep those as they come, not after keepAliveTimeout.
        const sweep = setInterval(() => {
          app.server.closeIdleConnections();
        }, 50);
        try {
          await app.close();
        } finally {
          clearInterval(sweep);
        }
        await database.close();
      },
    };
  } catch (error) {
    await database.close().catch(() => undefined);
    throw error;
  }
}

/** What a cluster's primary sends its workers to stop them gracefully. */
export const STOP_MESSAGE = 'myapi:stop';

/**
 * SIGTERM and SIGINT finish in-flight requests, close the database, then exit; twice forces.
 *
 * A cluster worker is stopped by its primary, with STOP_MESSAGE, and forced by it when it takes
 * too long. The signal that stopped the primary often reaches the workers too: Ctrl-C and
 * systemd (KillMode=control-group) signal the whole group. So in a worker a SIGTERM and the
 * message start the same one graceful stop, repeats change nothing, and SIGINT is the primary's.
 */
export function closeOnSignals(server: RunningServer, logger: Logger): void {
  let closing = false;
  const shutdown = (reason: string) => {
    closing = true;
    logger.info(`${reason}: finishing in-flight requests`);
    const timer = setTimeout(() => {
      logger.error('shutdown took too long: exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    server.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  if (cluster.isWorker) {
    const once = (reason: string) => {
      if (!closing) shutdown(reason);
    };
    process.on('SIGTERM', () => {
      once('SIGTERM received');
    });
    process.on('SIGINT', () => undefined);
    process.on('message', (message) => {
      if (message === STOP_MESSAGE) once('stop asked by the primary');
    });
    return;
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (closing) {
        logger.warn(`${signal} again: exiting now`);
        process.exit(1);
      }
      shutdown(`${signal} received`);
    });
  }
}
