// The fault scenarios by name, for bench/faults/run.mjs (`--only` picks among these).
import { databaseOutage } from './database.mjs';
import { batchIsolation } from './batch.mjs';
import { killCli } from './cli.mjs';
import { poolLock } from './pool.mjs';
import { killDuringWrites, sigterm } from './server.mjs';
import { slowClients } from './slow.mjs';

export const SCENARIOS = {
  'pg-restart-fast': {
    about: 'PostgreSQL restarted (pg_ctl -m fast) under read load, c32',
    run: ({ dir, quick }) => databaseOutage({ mode: 'fast', dir, after: quick ? 3 : 5 }),
  },
  'pg-restart-immediate': {
    about: 'PostgreSQL restarted (pg_ctl -m immediate: a crash and recovery) under read load, c32',
    run: ({ dir, quick }) =>
      databaseOutage({
        mode: 'immediate',
        movies: quick ? 0 : 2000,
        dir,
        after: quick ? 3 : 5,
        connections: quick ? 16 : 32,
      }),
  },
  'pg-down-15s': {
    about: 'PostgreSQL stopped for 15 s under read load, c32',
    run: ({ dir, quick }) => databaseOutage({ mode: 'down', downSeconds: quick ? 5 : 15, dir }),
  },

  sigterm: {
    about: 'SIGTERM to `serve` (one process) under read load, c32',
    run: ({ dir }) => sigterm({ dir }),
  },
  'sigterm-workers2': {
    about: 'SIGTERM to `serve --workers 2` under read load, c32',
    run: ({ dir }) => sigterm({ dir, workers: 2 }),
  },
  'kill9-writes-pg': {
    about:
      'kill -9 of the server during writes on PostgreSQL, c8; every acknowledged write looked for',
    run: ({ dir, quick }) => killDuringWrites({ dir, before: quick ? 3 : 5 }),
  },
  'kill9-writes-embedded': {
    about:
      'kill -9 of the server during writes on the embedded database, c8; every acknowledged write looked for',
    run: ({ dir, quick }) => killDuringWrites({ dir, embedded: true, before: quick ? 3 : 5 }),
  },

  'pool-lock': {
    about:
      'MYAPI_DATABASE__POOL_MAX=2, c64 reads, `lock table myapi.movies` held 10 s by another client',
    run: ({ dir }) => poolLock({ dir }),
  },

  'kill9-seed-pg': {
    about: 'kill -9 of `seed --synthetic 500000` at 0.7, 1.5 and 3 s (PostgreSQL): all or nothing',
    run: ({ dir }) =>
      killCli({
        command: 'seed',
        embedded: false,
        killAfterMs: [700, 1500, 3000],
        count: 500000,
        dir,
      }),
  },
  'kill9-seed-embedded': {
    about: 'kill -9 of `seed --synthetic 500000` at 0.7, 1.5 and 3 s (embedded): all or nothing',
    run: ({ dir }) =>
      killCli({
        command: 'seed',
        embedded: true,
        killAfterMs: [700, 1500, 3000],
        count: 500000,
        dir,
      }),
  },
  'kill9-import-pg': {
    about:
      'kill -9 of `import-movies of a 200,000-row CSV` at 0.7, 1.5 and 3 s (PostgreSQL): all or nothing',
    run: ({ dir }) =>
      killCli({
        command: 'import',
        embedded: false,
        killAfterMs: [700, 1500, 3000],
        count: 200000,
        dir,
      }),
  },
  'kill9-import-embedded': {
    about:
      'kill -9 of `import-movies of a 200,000-row CSV` at 0.7, 1.5 and 3 s (embedded): all or nothing',
    run: ({ dir }) =>
      killCli({
        command: 'import',
        embedded: true,
        killAfterMs: [700, 1500, 3000],
        count: 200000,
        dir,
      }),
  },

  'slow-clients': {
    about: 'slowloris: 20 connections sending header lines and 20 sending a body at 1 byte/2 s',
    run: ({ dir, quick }) => slowClients({ dir, capSeconds: quick ? 40 : 130 }),
  },

  'batch-isolation-pg': {
    about: 'GET /movies/Infinity and a valid GET /movies/{id} at once, 30 times (PostgreSQL)',
    run: ({ dir }) => batchIsolation({ dir }),
  },
  'batch-isolation-embedded': {
    about: 'GET /movies/Infinity and a valid GET /movies/{id} at once, 30 times (embedded)',
    run: ({ dir }) => batchIsolation({ dir, embedded: true }),
  },
};
