import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { buildApp } from '../src/app.js';
import { loadSettings } from '../src/backend/config.js';
import { migrate, openDatabase } from '../src/backend/database.js';
import { createLogger } from '../src/backend/logging.js';
import {
  createServerDatabase,
  describeEachDatabase,
  LogCapture,
  TOKEN_KEY,
  type TestApp,
} from './support/databases.js';
import { adminAuthorization, seedTutorial } from './support/http.js';

/**
 * Overload is answered fast: with the movies table locked by another client, requests get 503
 * with Retry-After after at most the pool's wait plus the lock wait, never the lock holder's time.
 */
const ACQUIRE_MS = 1000;
/** The lock wait ends by lock_timeout (55P03), or by statement_timeout (57014) without one. */
const LIMITS = [
  { name: 'lock_timeout', lock: '1000', statement: '30000' },
  { name: 'statement_timeout', lock: '0', statement: '1000' },
];
/** Generous, for a loaded machine; the lock is held far longer than this. */
const ANSWER_WITHIN_MS = 5000;

for (const limit of LIMITS) {
  describeEachDatabase(
    `a locked table on the PostgreSQL server, with ${limit.name}`,
    { kinds: ['postgres'] },
    () => {
      let t: TestApp;
      let drop: () => Promise<void>;
      let authorization: string;
      before(async () => {
        const server = await createServerDatabase();
        drop = server.drop;
        const { settings } = loadSettings({
          env: {
            MYAPI_DATABASE__DSN: server.dsn,
            MYAPI_TOKEN_KEY: TOKEN_KEY,
            MYAPI_DATABASE__POOL_MAX: '2',
            MYAPI_DATABASE__ACQUIRE_TIMEOUT_MS: String(ACQUIRE_MS),
            MYAPI_DATABASE__LOCK_TIMEOUT_MS: limit.lock,
            MYAPI_DATABASE__STATEMENT_TIMEOUT_MS: limit.statement,
          },
          cwd: '/nonexistent',
        });
        const database = await openDatabase(settings, { role: 'server' });
        await migrate(database.db);
        const logs = new LogCapture();
        const app = await buildApp({
          settings: { ...settings, log_level: 'warn' },
          database,
          tokenKey: TOKEN_KEY,
          logger: createLogger('warn', logs),
        });
        await app.ready();
        t = {
          kind: 'postgres',
          dsn: server.dsn,
          settings,
          database,
          app,
          logs,
          async close() {
            await app.close();
            await database.close();
          },
        };
        await seedTutorial(t);
        authorization = await adminAuthorization(t);
      });
      after(async () => {
        await t.close();
        await drop();
      });

      const requests = () => {
        const headers = { authorization };
        return [
          ...Array.from({ length: 6 }, () => ({
            method: 'GET' as const,
            url: '/movies/1',
            headers,
          })),
          ...Array.from({ length: 3 }, () => ({
            method: 'GET' as const,
            url: '/movies/new?year=1990&rating=8',
            headers,
          })),
          // The same ids after the lock: none of these may have landed under it.
          ...Array.from({ length: 3 }, (_, i) => ({
            method: 'POST' as const,
            url: '/movies',
            headers,
            payload: { movie_id: 1001 + i, title: 'Locked Out', released: 2001, rating: 7.5 },
          })),
        ];
      };

      it(
        'answers reads and writes 503 with Retry-After quickly, then serves them once released',
        { timeout: 60_000 },
        async () => {
          const holder = new pg.Client({ connectionString: t.dsn });
          await holder.connect();
          try {
            await holder.query('begin');
            await holder.query('lock table myapi.movies in access exclusive mode');
            const started = performance.now();
            const answers = await Promise.all(
              requests().map(async (request) => {
                const response = await t.app.inject(request);
                return { request, response, ms: performance.now() - started };
              }),
            );
            for (const { request, response, ms } of answers) {
              const what = `${request.method} ${request.url}`;
              assert.equal(response.statusCode, 503, `${what}: ${response.body}`);
              assert.match(String(response.headers['retry-after']), /^[1-9][0-9]*$/, what);
              assert.ok(ms < ANSWER_WITHIN_MS, `${what} took ${Math.round(ms)} ms`);
            }
            // The lock is still held: nobody waited for its holder.
            await holder.query('select 1');
          } finally {
            await holder.query('rollback').catch(() => undefined);
            await holder.end();
          }
          for (const request of requests()) {
            const response = await t.app.inject(request);
            assert.equal(
              response.statusCode,
              request.method === 'POST' ? 201 : 200,
              `${request.method} ${request.url}: ${response.body}`,
            );
          }
        },
      );
    },
  );
}
