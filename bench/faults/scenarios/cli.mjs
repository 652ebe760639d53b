// kill -9 of a CLI command in the middle of a bulk write: `seed --synthetic` and
// `import-movies`, on either database. Promise: all or nothing (the movie count afterwards is
// the count before, or the count before plus every movie), and the database opens again.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, ROOT, myapi, sleep, spawnTracked } from '../../lib/common.mjs';
import { prepareDatabase } from '../lib/app.mjs';
import { startCluster, withClient } from '../lib/cluster.mjs';

async function countMovies(db) {
  if (db.kind === 'postgresql') {
    return withClient(db.dsn, async (c) =>
      Number((await c.query('select count(*) from myapi.movies')).rows[0].count),
    );
  }
  // The embedded database is opened by the CLI itself: this also proves it opens after the kill.
  return myapi(['export-movies'], db.env()).split('\n').length - 1;
}

/** Other sessions on the database with a transaction open. */
function transactionsOpen(db) {
  return withClient(db.dsn, async (c) => {
    const sql =
      'select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null';
    return Number((await c.query(sql)).rows[0].count);
  });
}

/** A CSV of `count` movies with ids from `first` on. */
function writeCsv(file, first, count) {
  const lines = ['movie_id,title,released,rating'];
  for (let i = 0; i < count; i++)
    lines.push(`${first + i},Imported ${first + i},${1950 + (i % 70)},${(i % 99) / 10}`);
  writeFileSync(file, lines.join('\n') + '\n');
}

/**
 * Runs `args` and kills it with SIGKILL after each delay in `killAfterMs` (a fresh run each
 * time), checking the count after each kill.
 */
export async function killCli({ command, embedded, killAfterMs, count, dir }) {
  const cluster = embedded ? undefined : await startCluster();
  const db = await prepareDatabase({ cluster, movies: 0 });
  const csv = path.join(dir, `import-${db.kind}.csv`);
  if (command === 'import') writeCsv(csv, 10_000_000, count);
  const args = command === 'seed' ? ['seed', '--synthetic', String(count)] : ['import-movies', csv];
  const runs = [];
  for (const delay of killAfterMs) {
    const before = await countMovies(db);
    const child = spawnTracked(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      env: db.env(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    await Promise.race([sleep(delay), child.exited]);
    const finishedFirst = child.exitCode !== null;
    // On PostgreSQL, whether the command had a transaction open at the kill (the case that
    // matters); the embedded database cannot be asked while the command holds it.
    const openTransactions = db.kind === 'postgresql' ? await transactionsOpen(db) : null;
    child.kill('SIGKILL');
    const exit = await child.exited;
    const after = await countMovies(db);
    runs.push({
      kill_after_ms: delay,
      finished_before_kill: finishedFirst,
      transactions_open_at_kill: openTransactions,
      exit: exit.code ?? exit.signal,
      before,
      after,
      added: after - before,
      ...(finishedFirst && exit.code !== 0 ? { stderr: stderr.slice(-300) } : {}),
    });
  }
  // The database still takes the whole command after the kills.
  const before = await countMovies(db);
  let completed;
  try {
    myapi(args, db.env());
    completed = (await countMovies(db)) - before === count;
  } catch (error) {
    completed = `failed: ${error instanceof Error ? error.message.slice(0, 300) : error}`;
  }
  const figures = {
    command: `myapi ${args.join(' ').replace(dir, '<dir>')}`,
    database: db.kind,
    runs,
    full_run_after_kills_added_all: completed,
  };
  const checks = [
    {
      ok: runs.every((r) => r.added === 0 || r.added === count),
      what: `all or nothing after every kill (added: ${runs.map((r) => r.added).join(', ')} of ${count})`,
    },
    {
      // On PostgreSQL: while its transaction was open, seen from pg_stat_activity.
      ok: runs.some((r) => !r.finished_before_kill && (r.transactions_open_at_kill ?? 1) > 0),
      what: `at least one kill landed while the command was running${db.kind === 'postgresql' ? ' a transaction' : ''}`,
    },
    {
      ok: completed === true,
      what: `the command then ran to the end on the same database (${completed})`,
    },
  ];
  return { figures, checks };
}
