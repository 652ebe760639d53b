// The server's Prometheus metrics (prom-client): one registry per server, read at each scrape.
import { AggregatorRegistry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { Database } from '../database.js';
import type { PoolStats } from '../database/instruments.js';
import type { HashQueueState, LoginOutcome, ServiceMetrics } from '../../services/metrics.js';

/** Seconds: a read by id takes about a millisecond, a login tens to hundreds. */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const QUERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];
const DEFAULT_GAUGES_NAMED_AS_COUNTERS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];
const HASH_WAIT_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Every metric of one server process, in its own registry (an AggregatorRegistry, so that the
 * primary of `serve --workers` can ask each worker for it). The services count through the
 * ServiceMetrics they were given; HTTP, pools and the hashing queue are read or timed here.
 */
export class PrometheusMetrics implements ServiceMetrics {
  readonly registry = new AggregatorRegistry();
  /** Requests begun and finished: their difference is the requests in flight. */
  private begun = 0;
  private finished = 0;
  private readonly databases: Database[] = [];
  private hashQueue: (() => HashQueueState) | undefined;

  readonly requestDuration = new Histogram({
    name: 'myapi_http_request_duration_seconds',
    help: 'Time from a request to its response, by route pattern, method and status code',
    labelNames: ['route', 'method', 'status_code'] as const,
    buckets: REQUEST_BUCKETS,
    registers: [this.registry],
  });

  private readonly queryDuration = new Histogram({
    name: 'myapi_db_query_duration_seconds',
    help: 'Time of each SQL statement on a connection of a pool, by pool and SQL verb',
    labelNames: ['pool', 'operation'] as const,
    buckets: QUERY_BUCKETS,
    registers: [this.registry],
  });

  private readonly logins = new Counter({
    name: 'myapi_logins_total',
    help: 'Password grants at POST /token, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  private readonly throttleRefusals = new Counter({
    name: 'myapi_login_throttle_refusals_total',
    help: 'Password checks (logins and password changes) refused by the brute-force throttle',
    registers: [this.registry],
  });

  private readonly refreshReuses = new Counter({
    name: 'myapi_refresh_token_reuse_total',
    help: 'Used refresh tokens presented again (their logins were revoked)',
    registers: [this.registry],
  });

  private readonly revocations = new Counter({
    name: 'myapi_session_revocations_total',
    help: 'Login sessions revoked, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly hashWait = new Histogram({
    name: 'myapi_password_hash_wait_seconds',
    help: 'Time a password hash waited for a hashing slot',
    buckets: HASH_WAIT_BUCKETS,
    registers: [this.registry],
  });

  constructor() {
    const inFlight = () => this.begun - this.finished;
    const databases = this.databases;
    const hashQueue = () => this.hashQueue?.();
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters, which `promtool check metrics` rejects; each is the sum of the
    // same name without `_total`, reported by type, so nothing is lost.
    for (const name of DEFAULT_GAUGES_NAMED_AS_COUNTERS) this.registry.removeSingleMetric(name);
    new Gauge({
      name: 'myapi_http_requests_in_flight',
      help: 'Requests received and not yet answered',
      registers: [this.registry],
      collect() {
        this.set(inFlight());
      },
    });
    const poolGauge = (name: string, help: string, read: (stats: PoolStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['pool'] as const,
        registers: [this.registry],
        collect() {
          for (const database of databases) {
            for (const [pool, stats] of database.instruments?.pools() ?? []) {
              this.set({ pool }, read(stats));
            }
          }
        },
      });
    poolGauge('myapi_db_pool_connections', 'Connections open in the pool', (s) => s.size);
    poolGauge('myapi_db_pool_idle_connections', 'Open connections not in use', (s) => s.idle);
    poolGauge(
      'myapi_db_pool_waiting_requests',
      'Checkouts waiting for a connection',
      (s) => s.waiting,
    );
    new Gauge({
      name: 'myapi_password_hash_queue_depth',
      help: 'Password hashes waiting for a hashing slot',
      registers: [this.registry],
      collect() {
        this.set(hashQueue()?.queued ?? 0);
      },
    });
    new Gauge({
      name: 'myapi_password_hash_slots_busy',
      help: 'Hashing slots computing a hash or resting after one',
      registers: [this.registry],
      collect() {
        this.set(hashQueue()?.running ?? 0);
      },
    });
  }

  /** Times the database's queries and reports its pools (a database without a pool: nothing). */
  watchDatabase(database: Database): void {
    const { instruments } = database;
    if (instruments === undefined) return;
    this.databases.push(database);
    const queries = this.queryDuration;
    instruments.onQuery = (pool, operation, seconds) => {
      queries.observe({ pool, operation }, seconds);
    };
  }

  requestBegun(): void {
    this.begun++;
  }

  requestFinished(): void {
    this.finished++;
  }

  login(outcome: LoginOutcome): void {
    this.logins.inc({ outcome });
  }

  throttleRefused(): void {
    this.throttleRefusals.inc();
  }

  refreshTokenReused(): void {
    this.refreshReuses.inc();
  }

  sessionsRevoked(reason: string, count: number): void {
    if (count > 0) this.revocations.inc({ reason }, count);
  }

  watchHashQueue(read: () => HashQueueState): void {
    this.hashQueue = read;
  }

  hashWaited(seconds: number): void {
    this.hashWait.observe(seconds);
  }
}
