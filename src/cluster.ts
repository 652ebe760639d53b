// The primary of `myapi serve --workers N`: forks, restarts and stops the workers.
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { Settings } from './backend/config.js';
import { openDatabase } from './backend/database.js';
import { prepareDatabase } from './prepare.js';
import { STOP_MESSAGE } from './server.js';

/** Restart delays after crashes: doubling from 500 ms, at most 30 s. */
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/** A worker that served this long is healthy again: its next crash starts the back-off anew. */
const STABLE_AFTER_MS = 60_000;
/** Workers that die before ever listening this many times in a row: the setup is broken. */
const MAX_FAILED_STARTS = 3;
/** Beyond the workers' own shutdown timeout, before the primary kills them. */
const SHUTDOWN_MARGIN_MS = 5_000;

export class WorkersError extends Error {
  override name = 'WorkersError';
}

/** `--workers N` or `auto` (one per core). */
export function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism();
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > 256) {
    throw new WorkersError(`--workers must be a number from 1 to 256 or "auto" (got "${value}")`);
  }
  return Number(value);
}

interface WorkerState {
  startedAt: number;
  listening: boolean;
}

/**
 * The primary of `myapi serve --workers N`: checks the database once, forks N workers that
 * share the listening socket (node:cluster), restarts a crashed worker with back-off, and on
 * SIGTERM or SIGINT lets every worker finish its in-flight requests before exiting.
 */
export async function superviseWorkers(
  settings: Settings,
  count: number,
  logger: Logger,
): Promise<void> {
  if (settings.database.dsn.startsWith('pglite:')) {
    throw new WorkersError(
      '--workers needs a PostgreSQL server (MYAPI_DATABASE__DSN): the embedded database serves one process',
    );
  }
  // Fail once, here, with one line, rather than N times in N workers.
  const database = await openDatabase(settings, { role: 'tool', poolMax: 1 });
  try {
    await prepareDatabase(database, logger);
  } finally {
    await database.close();
  }

  // One metrics port for the whole cluster: each scrape gathers every worker's registry.
  if (settings.metrics.port !== undefined || settings.metrics.token !== undefined) {
    const { clusterScrape, listenMetrics } = await import('./backend/metrics/index.js');
    const scrape = clusterScrape();
    if (settings.metrics.port !== undefined) {
      const listener = await listenMetrics(settings.metrics.host, settings.metrics.port, scrape);
      logger.info(`metrics of every worker at ${listener.url}`);
    }
  }

  const states = new Map<Worker, WorkerState>();
  let crashes = 0;
  let failedStarts = 0;
  let stopping = false;

  const fork = () => {
    const worker = cluster.fork();
    states.set(worker, { startedAt: Date.now(), listening: false });
    worker.on('listening', () => {
      const state = states.get(worker);
      if (state) state.listening = true;
      failedStarts = 0;
    });
  };

  let exitCode = 0;
  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => {
      logger.error('workers did not stop in time: killing them');
      for (const worker of states.keys()) worker.process.kill('SIGKILL');
      process.exit(1);
    }, settings.http.shutdown_timeout_ms + SHUTDOWN_MARGIN_MS);
    timer.unref();
    if (states.size === 0) process.exit(code);
    exitCode = code;
    for (const worker of states.keys()) {
      if (worker.isConnected()) worker.send(STOP_MESSAGE);
      else worker.process.kill('SIGTERM');
    }
  };

  cluster.on('exit', (worker, code, signal) => {
    const state = states.get(worker);
    states.delete(worker);
    if (stopping) {
      if (code !== 0) exitCode = 1;
      if (states.size === 0) {
        logger.info('all workers stopped');
        process.exit(exitCode);
      }
      return;
    }
    const lived = Date.now() - (state?.startedAt ?? Date.now());
    if (state?.listening !== true && ++failedStarts >= MAX_FAILED_STARTS) {
      logger.fatal(`${failedStarts} workers in a row failed to start: stopping`);
      stopAll(1);
      return;
    }
    crashes = lived > STABLE_AFTER_MS ? 1 : crashes + 1;
    const delay = Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** (crashes - 1));
    logger.error(
      { worker: worker.process.pid, code, signal, restartInMs: delay },
      'worker died: restarting it',
    );
    setTimeout(() => {
      if (!stopping) fork();
    }, delay);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) {
        logger.warn(`${signal} again: killing ${states.size} workers now`);
        for (const worker of states.keys()) worker.process.kill('SIGKILL');
        process.exit(1);
      }
      logger.info(`${signal} received: stopping ${states.size} workers`);
      stopAll(0);
    });
  }

  for (let i = 0; i < count; i++) fork();
  logger.info(`started ${count} workers on ${settings.host}:${settings.port}`);
}
