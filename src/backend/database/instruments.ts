// What the metrics read from the database layer: each pool's counts, and the time of each query.
import type pg from 'pg';

/** A pool's connections now: open ones, idle ones, and checkouts waiting for one. */
export interface PoolStats {
  size: number;
  idle: number;
  waiting: number;
}

/** Told of every query that ended (or failed): its pool, its SQL verb, its time in seconds. */
export type QueryObserver = (pool: string, operation: string, seconds: number) => void;

const OPERATIONS = new Set([
  'select',
  'insert',
  'update',
  'delete',
  'with',
  'begin',
  'commit',
  'rollback',
]);
const FIRST_WORD = /^\s*([A-Za-z]+)/;

/** The statement's verb, from a fixed set: a label value must not grow with the queries. */
export function operationOf(query: unknown): string {
  const text =
    typeof query === 'string'
      ? query
      : typeof query === 'object' && query !== null && 'text' in query
        ? query.text
        : undefined;
  if (typeof text !== 'string') return 'other';
  const verb = FIRST_WORD.exec(text)?.[1]?.toLowerCase();
  return verb !== undefined && OPERATIONS.has(verb) ? verb : 'other';
}

type QueryFunction = (...args: unknown[]) => unknown;

/**
 * The pools of one Database by name ('primary'; a replica adds its own with addPool) and the one
 * observer of their queries, set by the server's metrics. Without an observer a query costs one
 * extra call and a check.
 */
export class DatabaseInstruments {
  private readonly sources = new Map<string, () => PoolStats>();
  onQuery: QueryObserver | undefined;

  /** Each pool's counts now, by name: read at each scrape. */
  pools(): [string, PoolStats][] {
    return [...this.sources].map(([name, read]) => [name, read()]);
  }

  /**
   * Reports `pool` under `name` and times the queries of every connection it opens from now on
   * (pg-pool's public 'connect' event, before the connection is handed out).
   */
  addPool(name: string, pool: pg.Pool): void {
    this.sources.set(name, () => ({
      size: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
    }));
    pool.on('connect', (client) => {
      this.timeQueries(name, client);
    });
  }

  private timeQueries(name: string, client: pg.PoolClient): void {
    const query = client.query.bind(client) as QueryFunction;
    const timed: QueryFunction = (...args) => {
      const observe = this.onQuery;
      if (observe === undefined) return query(...args);
      const started = performance.now();
      const done = () => {
        observe(name, operationOf(args[0]), (performance.now() - started) / 1000);
      };
      const last = args.length - 1;
      const callback = args[last];
      // pg-pool's own pool.query passes a callback; drizzle and queryArrays take the promise.
      if (typeof callback === 'function') {
        args[last] = (...results: unknown[]) => {
          done();
          (callback as QueryFunction)(...results);
        };
        return query(...args);
      }
      const result = query(...args);
      if (result instanceof Promise) result.then(done, done);
      return result;
    };
    client.query = timed as typeof client.query;
  }
}
