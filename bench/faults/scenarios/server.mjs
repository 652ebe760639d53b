// The server process under fire: SIGTERM under read load (one process, or --workers 2), and
// kill -9 in the middle of writes on either database, every acknowledged write looked for after
// a restart on the same database.
import http from 'node:http';
import path from 'node:path';
import { sleep, stopProcess, waitReady } from '../../lib/common.mjs';
import { auth, prepareDatabase, randomId, serve, startServe } from '../lib/app.mjs';
import { startCluster } from '../lib/cluster.mjs';
import { request, startLoad, summary } from '../lib/load.mjs';

const MOVIES = 2000;

/** SIGTERM to the server (the primary with workers) under c32 reads; load goes on until it exits. */
export async function sigterm({ workers, connections = 32, before = 3, dir }) {
  const cluster = await startCluster();
  const db = await prepareDatabase({ cluster, movies: MOVIES });
  const { server, token, port } = await serve(db, {
    logFile: path.join(dir, `server-sigterm-${workers ?? 1}.log`),
    workers,
  });
  const h = auth(token);
  const load = startLoad({
    port,
    connections,
    seconds: before + 40,
    next: () => ({ path: `/movies/${randomId(96 + MOVIES)}`, headers: h }),
  });
  await sleep(before * 1000);
  const termAt = performance.now();
  const beforeTerm = load.stats.total;
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), 30_000);
  const { code, signal } = await server.exited;
  clearTimeout(timer);
  const exitedAt = performance.now();
  // Whatever was still queued on the clients' side meets a closed port now: refused, not reset.
  await sleep(500);
  load.stop();
  const stats = await load.done;
  const after = stats.timeline.filter(([t]) => t + stats.t0 >= termAt);
  const byKind = {};
  for (const [, what] of after) byKind[what] = (byKind[what] ?? 0) + 1;
  const figures = {
    ...summary(stats),
    requests_before_sigterm: beforeTerm,
    answers_after_sigterm: byKind,
    exit: code ?? signal,
    drain_ms: Math.round(exitedAt - termAt),
  };
  const checks = [
    { ok: figures.bad_5xx === 0, what: `no 5xx other than 503 (${figures.bad_5xx})` },
    {
      ok: figures.resets === 0,
      what: `no connection reset (${figures.resets})`,
      known: 'issue 17 item 8',
    },
    {
      // Fastify's own 503 while closing is {"error":"Service Unavailable",...} as
      // application/json: no Retry-After, not problem+json.
      ok: figures.server_errors_without_retry_after === 0,
      what: `every 503 during the drain has Retry-After (${figures.server_errors_without_retry_after} without)`,
      known: 'issue 17 item 8',
    },
    { ok: code === 0, what: `the server exited 0 (${code ?? signal})` },
    { ok: figures.drain_ms < 15_000, what: `it stopped within 15 s (${figures.drain_ms} ms)` },
  ];
  return { figures, checks };
}

/**
 * kill -9 while `connections` clients create movies; restart on the same database and read
 * back every movie whose 201 came back. Lost acknowledged writes are the failure.
 */
export async function killDuringWrites({ embedded, connections = 8, before = 4, dir }) {
  const cluster = embedded ? undefined : await startCluster();
  const db = await prepareDatabase({ cluster, movies: 0, seed: false });
  const logFile = path.join(dir, `server-kill9-${db.kind}.log`);
  const { server, token, port } = await serve(db, { logFile });
  const h = { ...auth(token), 'content-type': 'application/json' };
  const acked = new Map();
  const load = startLoad({
    port,
    connections,
    seconds: before + 30,
    timeoutMs: 5000,
    next: (i) => {
      const id = 1_000_000 + i;
      return {
        method: 'POST',
        path: '/movies',
        headers: h,
        body: JSON.stringify({ movie_id: id, title: `ack ${id}`, released: 2000, rating: 5 }),
        id,
      };
    },
    onResult: (req, res) => {
      if (res.status === 201) acked.set(req.id, `ack ${req.id}`);
    },
  });
  await sleep(before * 1000);
  server.kill('SIGKILL');
  await server.exited;
  // Let the clients see the dead server for a moment (refused and reset), then stop them.
  await sleep(300);
  load.stop();
  const stats = await load.done;
  const again = await startServe({ env: db.env(), logFile });
  const stopAgain = () => stopProcess(again, 10_000);
  try {
    const restartMs = await waitReady(again, again.spawnedAt, { timeoutMs: 90_000 });
    // A fresh token: the old one may be fine, but the check must not depend on it.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const missing = [];
    const wrong = [];
    const ids = [...acked.keys()];
    for (let i = 0; i < ids.length; i += 8) {
      const batch = ids.slice(i, i + 8);
      const answers = await Promise.all(
        batch.map((id) =>
          request(again.port, { path: `/movies/${id}`, headers: auth(token) }, { agent }),
        ),
      );
      answers.forEach((res, k) => {
        if (res.status === 404) missing.push(batch[k]);
        else if (res.status !== 200 || JSON.parse(res.body).title !== acked.get(batch[k]))
          wrong.push([batch[k], res.status ?? res.error]);
      });
    }
    agent.destroy();
    const figures = {
      ...summary(stats),
      writes_acknowledged: acked.size,
      writes_found: acked.size - missing.length - wrong.length,
      missing: missing.slice(0, 20),
      unreadable: wrong.slice(0, 20),
      restart_ready_ms: Math.round(restartMs),
    };
    const checks = [
      { ok: acked.size > 0, what: `writes were acknowledged before the kill (${acked.size})` },
      {
        ok: missing.length === 0 && wrong.length === 0,
        what: `every acknowledged write is there after the restart (${missing.length} missing, ${wrong.length} unreadable)`,
      },
      {
        ok: figures.bad_5xx === 0,
        what: `no 5xx other than 503 before the kill (${figures.bad_5xx})`,
      },
    ];
    return { figures, checks };
  } finally {
    await stopAgain();
  }
}
