/** `myapi serve`: the HTTP server, loaded only when this command runs (the others need no Fastify). */
import cluster from 'node:cluster';
import { InvalidArgumentError, type Command } from 'commander';
import { InputError, settingsFrom } from './common.js';

function port(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) > 65_535) {
    throw new InvalidArgumentError('must be a port number from 0 to 65535');
  }
  return Number(value);
}

interface ServeOptions {
  host?: string;
  port?: number;
  workers: string;
}

async function serve(options: ServeOptions): Promise<void> {
  const settings = settingsFrom({ overrides: { host: options.host, port: options.port } });
  // Imported here: the server module brings Fastify and its plugins, which no other command uses.
  const [{ createLogger }, { closeOnSignals, startServer }, workers, tracing] = await Promise.all([
    import('../backend/logging.js'),
    import('../server.js'),
    import('../cluster.js'),
    import('../backend/tracing.js'),
  ]);
  const logger = createLogger(settings.log_level);
  try {
    // OTEL_* values the exporter cannot honour stop the start, in a cluster's primary too.
    tracing.tracingWanted(process.env);
    const count = workers.parseWorkers(options.workers);
    if (count > 1 && cluster.isPrimary) {
      await workers.superviseWorkers(settings, count, logger);
      return;
    }
  } catch (error) {
    if (error instanceof workers.WorkersError || error instanceof tracing.TracingConfigError) {
      throw new InputError(error.message);
    }
    throw error;
  }
  // Each serving process traces its own requests (a cluster's primary serves none).
  await tracing.startTracing(logger);
  closeOnSignals(await startServer(settings, logger), logger);
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the API (what `npm start` runs)')
    .option('--host <host>', 'address to listen on (default: MYAPI_HOST or 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default: MYAPI_PORT or 8000)', port)
    .option(
      '--workers <n>',
      'processes serving the same port: a number, or "auto" for one per core (PostgreSQL only)',
      '1',
    )
    .action(serve);
}
