// Does the server's memory stay flat? Minutes of mixed load (reads by id, /movies/new, list and
// search, logins, writes, 5% malformed requests) on the embedded database and on PostgreSQL (a
// private cluster), sampling the server's RSS from /proc and its V8 heap over IPC; prints a
// table over time and the trend. Optionally writes heap snapshots to compare (heapdiff.mjs).
import { readFileSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import {
  build,
  commandLine,
  fmt,
  memoryOf,
  runMain,
  sleep,
  stopProcess,
  tempDir,
  textTable,
  toJson,
  writeJson,
} from '../lib/common.mjs';
import { prepareDatabase, serve } from './lib/app.mjs';
import { startCluster } from './lib/cluster.mjs';
import { startLoad, summary } from './lib/load.mjs';
import { mixedTraffic } from './lib/mix.mjs';

const USAGE = `usage: node bench/faults/memory.mjs [options]
  --minutes N        minutes of load per database (default 10)
  --db D             embedded, postgresql or both (default both)
  --connections C    concurrent keep-alive connections (default 16)
  --sample-seconds S sampling interval (default 10)
  --movies N         synthetic movies seeded (default 10000)
  --snapshots        heap snapshots after the first minute and at the end (into the temp dir)
  --out FILE         also write the samples and figures as JSON
  --no-build         do not run npm run build first`;

const { values, int } = commandLine('memory', USAGE, {
  minutes: { type: 'string', default: '10' },
  db: { type: 'string', default: 'both' },
  connections: { type: 'string', default: '16' },
  'sample-seconds': { type: 'string', default: '10' },
  movies: { type: 'string', default: '10000' },
  snapshots: { type: 'boolean', default: false },
  out: { type: 'string' },
  'no-build': { type: 'boolean', default: false },
});
const MB = 1024 * 1024;
const PROBE = path.resolve(import.meta.dirname, '../lib/memory-probe.mjs');

/** process.memoryUsage() of the server (and the heap used after a full GC) over IPC. */
function heapOf(server, timeoutMs = 10_000) {
  return new Promise((resolve) => {
    const id = Math.random();
    const timer = setTimeout(() => {
      server.off('message', onMessage);
      resolve(null);
    }, timeoutMs);
    const onMessage = (m) => {
      if (m?.type !== 'myapi-bench-memory' || m.id !== id) return;
      clearTimeout(timer);
      server.off('message', onMessage);
      resolve(m);
    };
    server.on('message', onMessage);
    try {
      server.send({ type: 'myapi-bench-memory', id, gc: true });
    } catch {
      clearTimeout(timer);
      server.off('message', onMessage);
      resolve(null);
    }
  });
}

/**
 * Where the RSS is, from /proc/<pid>/smaps: glibc's main heap ([heap], native allocations) and
 * the largest anonymous mapping (with the embedded database, its WebAssembly memory).
 */
function smapsOf(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return { native_heap_mb: NaN, largest_anon_mb: NaN };
  }
  let name = '';
  let brk = 0;
  let largest = 0;
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      name = head[1];
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const mb = Number(rss[1]) / 1024;
    if (name === '[heap]') brk += mb;
    else if (name === '') largest = Math.max(largest, mb);
  }
  return { native_heap_mb: brk, largest_anon_mb: largest };
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const num = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return num / den;
}

/** Waits for a new *.heapsnapshot in dir and names it. */
async function snapshot(server, dir, name) {
  const before = new Set(readdirSync(dir));
  server.kill('SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await sleep(500);
    const fresh = readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    // Node writes the file from the main thread: once the server answers again, it is complete.
    if (fresh.length > 0) {
      await heapOf(server, 120_000);
      const target = path.join(dir, `${name}.heapsnapshot`);
      renameSync(path.join(dir, fresh[0]), target);
      return target;
    }
  }
  return null;
}

async function soak(kind, options) {
  const cluster = kind === 'postgresql' ? await startCluster() : undefined;
  const db = await prepareDatabase({ cluster, movies: options.movies });
  const dir = tempDir(`myapi-faults-memory-${kind}-`);
  const nodeArgs = [
    '--import',
    PROBE,
    '--expose-gc',
    '--heapsnapshot-signal=SIGUSR2',
    `--diagnostic-dir=${dir}`,
  ];
  const { server, token, port } = await serve(db, {
    logFile: path.join(dir, 'server.log'),
    nodeArgs,
    ipc: true,
  });
  const maxId = 96 + options.movies;
  const traffic = mixedTraffic({ token, maxId });
  const seconds = options.minutes * 60;
  const snapshots = [];
  // A snapshot stops the server for seconds and leaves native memory behind: only before the
  // load and after it, so the samples in between are undisturbed.
  if (options.snapshots) snapshots.push(await snapshot(server, dir, `${kind}-before`));
  const load = startLoad({
    port,
    connections: options.connections,
    seconds,
    ...traffic,
    timeoutMs: 30_000,
  });
  const samples = [];
  let lastTotal = 0;
  let died = null;
  console.error(
    `== ${kind}: ${options.minutes} min of mixed load at c${options.connections}, pid ${server.pid}`,
  );
  for (let t = 0; t <= seconds; t += options.sample_seconds) {
    const wait = load.t0 + t * 1000 - performance.now();
    if (wait > 0) await sleep(wait);
    if (server.exitCode !== null || server.signalCode !== null) {
      died = `the server exited (${server.exitCode ?? server.signalCode}) at about t=${t} s`;
      console.error(`   ${died}`);
      break;
    }
    const rss = memoryOf(server.pid);
    const heap = await heapOf(server);
    const m = heap?.memory;
    const total = load.stats.total;
    const sample = {
      t,
      rss_mb: rss?.rss_mb ?? NaN,
      heap_used_mb: m ? m.heapUsed / MB : NaN,
      heap_live_mb: heap?.liveHeapUsed ? heap.liveHeapUsed / MB : NaN,
      external_mb: m ? m.external / MB : NaN,
      array_buffers_mb: m ? m.arrayBuffers / MB : NaN,
      ...smapsOf(server.pid),
      requests: total - lastTotal,
    };
    lastTotal = total;
    samples.push(sample);
    console.error(
      `   t=${t}s RSS ${fmt(sample.rss_mb, 1)} MiB, heap ${fmt(sample.heap_used_mb, 1)} (live ${fmt(sample.heap_live_mb, 1)}), external ${fmt(sample.external_mb, 1)} MiB, ${sample.requests} requests`,
    );
  }
  load.stop();
  const stats = await load.done;
  if (options.snapshots && died === null)
    snapshots.push(await snapshot(server, dir, `${kind}-end`));
  await stopProcess(server, 10_000);
  const minute = Math.max(1, Math.round(60 / options.sample_seconds));
  const first = samples.slice(1, 1 + minute);
  const last = samples.slice(-minute);
  const avg = (xs, k) => xs.reduce((a, s) => a + s[k], 0) / xs.length;
  const half = samples.slice(Math.floor(samples.length / 2));
  const trend = {
    rss_first_minute_mb: avg(first, 'rss_mb'),
    rss_last_minute_mb: avg(last, 'rss_mb'),
    rss_max_mb: Math.max(...samples.map((s) => s.rss_mb)),
    rss_slope_second_half_mb_per_min: slope(half.map((s) => [s.t / 60, s.rss_mb])),
    live_heap_first_minute_mb: avg(first, 'heap_live_mb'),
    live_heap_last_minute_mb: avg(last, 'heap_live_mb'),
    live_heap_slope_second_half_mb_per_min: slope(half.map((s) => [s.t / 60, s.heap_live_mb])),
    external_slope_second_half_mb_per_min: slope(half.map((s) => [s.t / 60, s.external_mb])),
  };
  return { kind, samples, trend, load: summary(stats), snapshots, dir, died };
}

runMain(async () => {
  const options = {
    minutes: int('minutes', 1, 240),
    connections: int('connections', 1, 512),
    sample_seconds: int('sample-seconds', 1, 600),
    movies: int('movies', 0, 10_000_000),
  };
  if (!['embedded', 'postgresql', 'both'].includes(values.db)) {
    console.error(`memory: --db must be embedded, postgresql or both\n${USAGE}`);
    return 2;
  }
  if (!values['no-build']) build();
  const kinds = values.db === 'both' ? ['embedded', 'postgresql'] : [values.db];
  const results = [];
  for (const kind of kinds)
    results.push(await soak(kind, { ...options, snapshots: values.snapshots }));
  for (const r of results) {
    console.log(`\n${r.kind}: RSS and V8 heap (MiB) under mixed load, one row per sample`);
    const rows = r.samples.map((s) => [
      s.t,
      fmt(s.rss_mb, 1),
      fmt(s.heap_used_mb, 1),
      fmt(s.heap_live_mb, 1),
      fmt(s.external_mb, 1),
      fmt(s.native_heap_mb, 1),
      fmt(s.largest_anon_mb, 1),
      s.requests,
    ]);
    console.log(
      textTable(
        [
          't (s)',
          'RSS',
          'heap used',
          'live heap',
          'external',
          'malloc [heap]',
          'largest anon',
          'requests',
        ],
        rows,
        [0, 1, 2, 3, 4, 5, 6, 7],
      ),
    );
    const t = r.trend;
    console.log(
      `trend: RSS ${fmt(t.rss_first_minute_mb, 1)} MiB (first minute) -> ${fmt(t.rss_last_minute_mb, 1)} MiB (last minute), max ${fmt(t.rss_max_mb, 1)}, slope over the second half ${fmt(t.rss_slope_second_half_mb_per_min, 2)} MiB/min`,
    );
    console.log(
      `       live heap ${fmt(t.live_heap_first_minute_mb, 1)} -> ${fmt(t.live_heap_last_minute_mb, 1)} MiB, slope ${fmt(t.live_heap_slope_second_half_mb_per_min, 2)} MiB/min; external slope ${fmt(t.external_slope_second_half_mb_per_min, 2)} MiB/min`,
    );
    console.log(
      `load: ${toJson({ statuses: r.load.statuses, errors: r.load.errors, total: r.load.total }).replace(/\s+/g, ' ')}`,
    );
    if (r.died) console.log(`NOTE: ${r.died}`);
    if (r.snapshots.length > 0) console.log(`heap snapshots: ${r.snapshots.join(' ')}`);
    console.log(`server log and files: ${r.dir}`);
  }
  if (values.out) writeJson(values.out, { options, results });
  return 0;
});
