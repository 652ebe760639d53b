// PostgreSQL goes away under read load: restarted (fast or immediate) or stopped for a while.
// Promise: only fast 503s with Retry-After while it is away, no 500, no reset, and reads work
// again soon after it is back.
import path from 'node:path';
import { sleep } from '../../lib/common.mjs';
import { auth, prepareDatabase, randomId, serve } from '../lib/app.mjs';
import { probe, startCluster } from '../lib/cluster.mjs';
import { recovery, startLoad, summary } from '../lib/load.mjs';

/** mode: 'fast' | 'immediate' (a restart) or 'down' (stop, wait downSeconds, start). */
export async function databaseOutage({
  mode,
  movies = 2000,
  downSeconds = 15,
  connections = 32,
  before = 3,
  after = 5,
  dir,
}) {
  const cluster = await startCluster();
  const db = await prepareDatabase({ cluster, movies });
  const { server, token, port } = await serve(db, {
    logFile: path.join(dir, `server-${mode}.log`),
  });
  const h = auth(token);
  const maxId = 96 + movies;
  const load = startLoad({
    port,
    connections,
    seconds: before + (mode === 'down' ? downSeconds : 0) + after + 60,
    next: (i) =>
      i % 2
        ? { path: `/movies/${randomId(maxId)}`, headers: h }
        : { path: `/movies/?movie_id=${randomId(maxId)}`, headers: h },
  });
  await sleep(before * 1000);
  const prober = probe(cluster);
  const faultAt = performance.now() - load.t0;
  if (mode === 'down') {
    await cluster.stop('fast');
    await sleep(downSeconds * 1000);
    await cluster.start();
  } else {
    await cluster.restart(mode);
  }
  const back = await prober.back();
  await prober.stop();
  if (back === null) throw new Error('PostgreSQL did not come back within 60 s');
  const backAt = back - load.t0;
  const downAt = prober.downAt - load.t0;
  await sleep(after * 1000);
  load.stop();
  const stats = await load.done;
  const alive = server.exitCode === null && server.signalCode === null;
  const rec = recovery(stats, backAt);
  const figures = {
    ...summary(stats),
    database_away_ms: Math.round(backAt - downAt),
    fault_to_back_ms: Math.round(backAt - faultAt),
    first_ok_after_back_ms:
      rec.first_ok_after_ms === null ? null : Math.round(rec.first_ok_after_ms),
    last_error_after_back_ms:
      rec.last_error_after_ms === null ? null : Math.round(rec.last_error_after_ms),
    server_still_running: alive,
  };
  const checks = [
    { ok: figures.bad_5xx === 0, what: `no 5xx other than 503 (${figures.bad_5xx})` },
    {
      ok: figures.server_errors_without_retry_after === 0,
      what: `every 503 has Retry-After (${figures.server_errors_without_retry_after} without)`,
    },
    {
      ok: figures.resets === 0 && figures.timeouts === 0,
      what: `no reset or timeout (${figures.resets} resets, ${figures.timeouts} timeouts)`,
    },
    { ok: alive, what: 'the server kept running' },
    {
      ok: rec.first_ok_after_ms !== null && (rec.last_error_after_ms ?? 0) < 5000,
      what: `reads recovered within 5 s of the database's return (last error ${figures.last_error_after_back_ms ?? 'none'} ms after)`,
    },
  ];
  return { figures, checks };
}
