// The fault scenarios by name, for bench/faults/run.mjs (`--only` picks among these).
import { databaseOutage } from './database.mjs';

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
        dir,
        after: quick ? 3 : 5,
        connections: quick ? 16 : 32,
      }),
  },
  'pg-down-15s': {
    about: 'PostgreSQL stopped for 15 s under read load, c32',
    run: ({ dir, quick }) => databaseOutage({ mode: 'down', downSeconds: quick ? 5 : 15, dir }),
  },
};
