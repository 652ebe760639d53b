#!/usr/bin/env node
// Start-up time and memory of `myapi serve`. See bench/README.md.
//
// usage: node bench/footprint.mjs [--soak-seconds S] [--load-seconds S] [--runs N]
//                                 [--sample-seconds S] [--connections C] [--no-build] [--keep-logs]
//
// (a) time from spawning the server to the first 200 from GET /ready: on a PostgreSQL server
//     database (migrated, 10000 synthetic movies) and on an existing embedded database (a temp
//     directory initialised by a first start+stop); --runs starts each, min/median reported;
// (b) VmRSS of the server process idle after start, and each second under --load-seconds of
//     wrk load on GET /movies/?movie_id=<random>;
// (c) a soak: --soak-seconds of wrk load on GET /movies/?movie_id=<random> and /movies/new,
//     RSS and V8 heap every --sample-seconds; the curve, and the growth from the first minute
//     to the last.
// Uses the local PostgreSQL server ($BENCH_PG_DSN) with the database myapi_bench_fp (dropped at
// the end). Writes bench/results/footprint.json and bench/results/soak.svg.
import { rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  BENCH_DIR,
  build,
  commandLine,
  fmt,
  freshDatabase,
  getToken,
  localStamp,
  machineInfo,
  machineLine,
  mean,
  median,
  memoryOf,
  myapi,
  niceTicks,
  onCleanup,
  PALETTE,
  rel,
  requireCommand,
  RESULTS_DIR,
  runMain,
  serverEnv,
  runWrk,
  shortNumber,
  sleep,
  startServer,
  stopProcess,
  summarizeLog,
  tempDir,
  textTable,
  tokenKey,
  waitForQuietMachine,
  waitReady,
  writeJson,
  xmlEscape,
} from './lib/common.mjs';

const DATABASE = 'myapi_bench_fp';
const MOVIES = 10_000;
const EMAIL = 'bench@example.com';
const PASSWORD = 'footprint-password-1';
const PROBE = pathToFileURL(path.join(BENCH_DIR, 'lib', 'memory-probe.mjs')).href;
const MB = 1024 * 1024;

const USAGE = `usage: node bench/footprint.mjs [options]
  --runs N             starts per database kind for the start-up time (default 5)
  --load-seconds S     wrk load while sampling RSS every second (default 20)
  --soak-seconds S     soak duration (default 300)
  --sample-seconds S   soak sampling interval (default 10)
  --connections C      wrk connections for the loads (default 16)
  --log-level L        MYAPI_LOG_LEVEL of the server (default info, the server's default)
  --no-gc              soak: do not force a full GC after each sample (no live-heap series)
  --no-build           do not run \`npm run build\` first
  --keep-logs          keep the server and wrk logs (temp dir) instead of deleting them
env: BENCH_PG_DSN (admin DSN of the local PostgreSQL server)`;

function parseOptions() {
  const { values, int } = commandLine('footprint', USAGE, {
    runs: { type: 'string', default: '5' },
    'load-seconds': { type: 'string', default: '20' },
    'soak-seconds': { type: 'string', default: '300' },
    'sample-seconds': { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    'log-level': { type: 'string', default: 'info' },
    'no-build': { type: 'boolean', default: false },
    'no-gc': { type: 'boolean', default: false },
    'keep-logs': { type: 'boolean', default: false },
  });
  return {
    runs: int('runs', 1, 50),
    load_seconds: int('load-seconds', 1, 3600),
    soak_seconds: int('soak-seconds', 1, 24 * 3600),
    sample_seconds: int('sample-seconds', 1, 3600),
    connections: int('connections', 1, 1000),
    log_level: values['log-level'],
    build: !values['no-build'],
    gc: !values['no-gc'],
    keep_logs: values['keep-logs'],
  };
}

const stats = (xs) => ({ min: Math.min(...xs), median: median(xs), max: Math.max(...xs) });
const round = (x, digits = 1) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

/** process.memoryUsage() of a server started with the probe, over IPC (null on timeout). */
let queryId = 0;
function heapOf(server, gc, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const id = ++queryId;
    const timer = setTimeout(() => {
      server.off('message', onMessage);
      resolve(null);
    }, timeoutMs);
    function onMessage(message) {
      if (message?.type !== 'myapi-bench-memory' || message.id !== id) return;
      clearTimeout(timer);
      server.off('message', onMessage);
      resolve({ ...message.memory, liveHeapUsed: message.liveHeapUsed });
    }
    server.on('message', onMessage);
    try {
      server.send({ type: 'myapi-bench-memory', id, gc });
    } catch {
      clearTimeout(timer);
      server.off('message', onMessage);
      resolve(null);
    }
  });
}

/**
 * Calls sample(secondsSinceStart) every intervalMs until `done` settles, then once more;
 * bounded by `done` (runWrk kills wrk 30 s after its duration at the latest).
 */
async function sampleWhile(done, intervalMs, sample) {
  let finished = false;
  const settled = done.then(
    () => (finished = true),
    () => (finished = true),
  );
  const t0 = performance.now();
  const samples = [];
  for (let k = 1; ; k++) {
    const takenAt = performance.now();
    samples.push(await sample((takenAt - t0) / 1000));
    if (finished) return samples;
    await Promise.race([sleep(Math.max(0, t0 + k * intervalMs - performance.now())), settled]);
    if (finished) {
      // The load ended between two samples: one more, unless the last one was just taken.
      if (performance.now() - takenAt >= Math.min(1000, intervalMs / 2)) {
        samples.push(await sample((performance.now() - t0) / 1000));
      }
      return samples;
    }
  }
}

// ------------------------------------------------------------------ (a) start-up

async function startupRuns({ env, runs, tmp, name }) {
  const times = [];
  for (let i = 1; i <= runs; i++) {
    const server = await startServer({ env, logFile: path.join(tmp, `startup-${name}-${i}.log`) });
    try {
      times.push(await waitReady(server, server.spawnedAt, { intervalMs: 5 }));
    } finally {
      await stopProcess(server);
    }
    await sleep(300);
  }
  return times;
}

// ------------------------------------------------------------------ (c) soak chart

function soakSvg({ samples, machine, options, window }) {
  const W = 900;
  const H = 470;
  const left = 70;
  const right = W - 200;
  const top = 100;
  const bottom = H - 60;
  const series = [
    { key: 'rss_mb', label: 'RSS (VmRSS)' },
    { key: 'heap_total_mb', label: 'V8 heap total' },
    { key: 'heap_used_mb', label: 'V8 heap used' },
    { key: 'heap_live_mb', label: 'live heap (after GC)' },
    { key: 'external_mb', label: 'external + buffers' },
  ];
  const tMax = Math.max(...samples.map((s) => s.t_s), 1);
  const vMax = Math.max(...samples.flatMap((s) => series.map((se) => s[se.key] ?? 0)), 1);
  const xTicks = niceTicks(tMax, 8);
  const yTicks = niceTicks(vMax * 1.05, 6);
  const xMax = xTicks[xTicks.length - 1];
  const yMax = yTicks[yTicks.length - 1];
  const X = (t) => left + (t / xMax) * (right - left);
  const Y = (v) => bottom - (v / yMax) * (bottom - top);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<style>
  .title { font-size: 20px; font-weight: bold; fill: #222; }
  .sub { font-size: 12px; fill: #555; }
  .tick { font-size: 11px; fill: #444; }
  .lab { font-size: 13px; fill: #222; }
  .legend { font-size: 13px; fill: #222; }
  .grid { stroke: #e3e3e3; stroke-width: 1; }
  .axis { stroke: #888; stroke-width: 1; }
  .win { fill: #f2f2f2; }
</style>`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="20" y="30" class="title">myapi soak: memory under read load, ${xmlEscape(localStamp(new Date(machine.date)))}</text>`,
    `<text x="20" y="50" class="sub">${xmlEscape(machineLine(machine))}</text>`,
    `<text x="20" y="66" class="sub">${xmlEscape(`wrk -t1 -c${options.connections} for ${options.soak_seconds} s on GET /movies/?movie_id=<random> and /movies/new?year=2020&rating=9, sampled every ${options.sample_seconds} s`)}</text>`,
    `<text x="20" y="82" class="sub">${xmlEscape(`${options.gc ? 'live heap: heap used after a full GC forced right after each sample; ' : ''}shaded: the first and the last ${window} s, whose means are compared for growth`)}</text>`,
  ];
  // The two windows compared for growth.
  parts.push(
    `<rect x="${X(0)}" y="${top}" width="${X(Math.min(window, tMax)) - X(0)}" height="${bottom - top}" class="win"/>`,
    `<rect x="${X(Math.max(0, tMax - window))}" y="${top}" width="${X(tMax) - X(Math.max(0, tMax - window))}" height="${bottom - top}" class="win"/>`,
  );
  for (const v of yTicks) {
    parts.push(
      `<line x1="${left}" y1="${Y(v)}" x2="${right}" y2="${Y(v)}" class="grid"/>`,
      `<text x="${left - 6}" y="${Y(v) + 4}" class="tick" text-anchor="end">${shortNumber(v)}</text>`,
    );
  }
  for (const t of xTicks) {
    parts.push(
      `<line x1="${X(t)}" y1="${bottom}" x2="${X(t)}" y2="${bottom + 5}" class="axis"/>`,
      `<text x="${X(t)}" y="${bottom + 18}" class="tick" text-anchor="middle">${shortNumber(t)}</text>`,
    );
  }
  parts.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" class="axis"/>`,
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" class="axis"/>`,
    `<text x="${(left + right) / 2}" y="${H - 22}" class="lab" text-anchor="middle">time since the load started (s)</text>`,
    `<text x="20" y="${(top + bottom) / 2}" class="lab" text-anchor="middle" transform="rotate(-90 20 ${(top + bottom) / 2})">MiB</text>`,
  );
  series.forEach((se, i) => {
    const pts = samples.filter((s) => Number.isFinite(s[se.key]));
    if (pts.length === 0) return;
    const d = pts.map((s) => `${X(s.t_s).toFixed(1)},${Y(s[se.key]).toFixed(1)}`).join(' ');
    parts.push(
      `<polyline points="${d}" fill="none" stroke="${PALETTE[i]}" stroke-width="2"/>`,
      ...pts.map(
        (s) =>
          `<circle cx="${X(s.t_s).toFixed(1)}" cy="${Y(s[se.key]).toFixed(1)}" r="2.5" fill="${PALETTE[i]}"><title>${xmlEscape(`${se.label} at ${fmt(s.t_s, 0)} s: ${fmt(s[se.key], 1)} MiB`)}</title></circle>`,
      ),
    );
    const last = pts[pts.length - 1];
    parts.push(
      `<rect x="${right + 20}" y="${top + i * 40}" width="14" height="14" fill="${PALETTE[i]}"/>`,
      `<text x="${right + 40}" y="${top + i * 40 + 12}" class="legend">${xmlEscape(se.label)}</text>`,
      `<text x="${right + 40}" y="${top + i * 40 + 28}" class="tick">${xmlEscape(`last: ${fmt(last[se.key], 1)} MiB`)}</text>`,
    );
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

// ------------------------------------------------------------------ main

async function main() {
  const options = parseOptions();
  requireCommand('wrk', 'run ../shared/bench/setup.sh once (apt-get install wrk)');
  await waitForQuietMachine();
  if (options.build) build();
  const machine = machineInfo();
  const tmp = tempDir('myapi-footprint-');
  if (!options.keep_logs) onCleanup(() => rmSync(tmp, { recursive: true, force: true }));
  const logs = {};
  const keepLog = (name, file) => (logs[name] = summarizeLog(file));

  console.error(`== database ${DATABASE}: migrate, ${MOVIES} synthetic movies, user ${EMAIL}`);
  const dsn = await freshDatabase(DATABASE);
  const pgEnv = serverEnv({
    MYAPI_DATABASE__DSN: dsn,
    MYAPI_TOKEN_KEY: tokenKey(),
    MYAPI_LOG_LEVEL: options.log_level,
  });
  myapi(['migrate'], pgEnv);
  myapi(['seed', '--synthetic', String(MOVIES)], pgEnv);
  myapi(['create-user', '--name', 'Footprint', '--email', EMAIL, '--password', PASSWORD], pgEnv);

  // (a) start-up time
  console.error(`== (a) start-up: ${options.runs} starts on PostgreSQL`);
  const pgTimes = await startupRuns({ env: pgEnv, runs: options.runs, tmp, name: 'pg' });
  const pgliteDir = path.join(tmp, 'pgdata');
  const pgliteEnv = serverEnv({
    MYAPI_DATABASE__DSN: `pglite:${pgliteDir}`,
    MYAPI_LOG_LEVEL: options.log_level,
  });
  console.error(`== (a) start-up: first start of an embedded database in ${pgliteDir}`);
  const [firstEmbedded] = await startupRuns({ env: pgliteEnv, runs: 1, tmp, name: 'pglite-init' });
  console.error(`== (a) start-up: ${options.runs} starts on the existing embedded database`);
  const pgliteTimes = await startupRuns({
    env: pgliteEnv,
    runs: options.runs,
    tmp,
    name: 'pglite',
  });
  for (const f of ['pg-1', 'pglite-init-1', 'pglite-1']) {
    keepLog(`startup-${f}`, path.join(tmp, `startup-${f}.log`));
  }

  // (b) RSS idle and under load
  console.error(
    `== (b) memory: idle, then ${options.load_seconds} s of GET /movies/?movie_id=<random>`,
  );
  const memLog = path.join(tmp, 'memory.log');
  const server = await startServer({ env: pgEnv, logFile: memLog });
  onCleanup(() => stopProcess(server));
  await waitReady(server, server.spawnedAt);
  await sleep(3000);
  const idleSamples = [];
  for (let i = 0; i < 3; i++) {
    idleSamples.push(memoryOf(server.pid).rss_mb);
    if (i < 2) await sleep(1000);
  }
  const token = await getToken(server.baseUrl, EMAIL, PASSWORD);
  const loadRun = runWrk({
    url: `${server.baseUrl}/`,
    script: 'read.lua',
    args: ['by_id', MOVIES],
    duration: options.load_seconds,
    connections: options.connections,
    token,
    logFile: path.join(tmp, 'wrk-memory.txt'),
  });
  const loadSamples = await sampleWhile(loadRun, 1000, (t) => ({
    t_s: round(t),
    rss_mb: round(memoryOf(server.pid)?.rss_mb),
  }));
  const loadWrk = await loadRun;
  const hwm = memoryOf(server.pid)?.hwm_mb;
  await stopProcess(server);
  keepLog('memory', memLog);
  const loadRss = loadSamples.map((s) => s.rss_mb).filter(Number.isFinite);

  // (c) soak
  console.error(
    `== (c) soak: ${options.soak_seconds} s of GET /movies/?movie_id=<random> + /movies/new, samples every ${options.sample_seconds} s`,
  );
  const soakLog = path.join(tmp, 'soak.log');
  const soakServer = await startServer({
    env: pgEnv,
    logFile: soakLog,
    nodeArgs: [...(options.gc ? ['--expose-gc'] : []), '--import', PROBE],
    ipc: true,
  });
  onCleanup(() => stopProcess(soakServer));
  await waitReady(soakServer, soakServer.spawnedAt);
  const soakToken = await getToken(soakServer.baseUrl, EMAIL, PASSWORD);
  const soakRun = runWrk({
    url: `${soakServer.baseUrl}/`,
    script: 'read.lua',
    args: ['mix', MOVIES],
    duration: options.soak_seconds,
    connections: options.connections,
    token: soakToken,
    logFile: path.join(tmp, 'wrk-soak.txt'),
  });
  const soakSamples = await sampleWhile(soakRun, options.sample_seconds * 1000, async (t) => {
    const rss = memoryOf(soakServer.pid);
    const heap = await heapOf(soakServer, options.gc);
    const sample = {
      t_s: round(t),
      rss_mb: round(rss?.rss_mb),
      heap_used_mb: round(heap ? heap.heapUsed / MB : NaN),
      heap_total_mb: round(heap ? heap.heapTotal / MB : NaN),
      external_mb: round(heap ? (heap.external + heap.arrayBuffers) / MB : NaN),
      heap_live_mb: round(heap?.liveHeapUsed ? heap.liveHeapUsed / MB : NaN),
    };
    console.error(
      `   t=${fmt(t, 0)} s  RSS ${fmt(sample.rss_mb, 1)} MiB  heap used ${fmt(sample.heap_used_mb, 1)} / total ${fmt(sample.heap_total_mb, 1)} MiB, live ${fmt(sample.heap_live_mb, 1)} MiB`,
    );
    return sample;
  });
  const soakWrk = await soakRun;
  await stopProcess(soakServer);
  keepLog('soak', soakLog);

  const tEnd = soakSamples[soakSamples.length - 1].t_s;
  const window = Math.min(60, Math.max(1, tEnd / 2));
  const first = soakSamples.filter((s) => s.t_s <= window);
  const last = soakSamples.filter((s) => s.t_s >= tEnd - window);
  const growth = {};
  for (const key of ['rss_mb', 'heap_used_mb', 'heap_total_mb', 'heap_live_mb', 'external_mb']) {
    const a = mean(first.map((s) => s[key]).filter(Number.isFinite));
    const b = mean(last.map((s) => s[key]).filter(Number.isFinite));
    growth[key] = {
      first_window_mean: round(a),
      last_window_mean: round(b),
      growth: round(b - a),
      growth_percent: round(((b - a) / a) * 100),
    };
  }

  // ---------------------------------------------------------------- report
  const logSizes = {};
  for (const [name, file] of [
    ['memory', memLog],
    ['soak', soakLog],
  ]) {
    logSizes[name] = round(statSync(file).size / MB);
  }
  console.log(`\nFootprint: ${machineLine(machine)}\n`);
  console.log(
    `(a) start-up: spawn of \`node dist/cli.js serve\` to the first 200 from GET /ready (ms)`,
  );
  const s1 = stats(pgTimes);
  const s2 = stats(pgliteTimes);
  console.log(
    textTable(
      ['database', 'runs', 'min', 'median', 'max'],
      [
        [
          `PostgreSQL (${MOVIES} movies)`,
          pgTimes.length,
          fmt(s1.min, 0),
          fmt(s1.median, 0),
          fmt(s1.max, 0),
        ],
        [
          'embedded, existing',
          pgliteTimes.length,
          fmt(s2.min, 0),
          fmt(s2.median, 0),
          fmt(s2.max, 0),
        ],
        [
          'embedded, first start',
          1,
          fmt(firstEmbedded, 0),
          fmt(firstEmbedded, 0),
          fmt(firstEmbedded, 0),
        ],
      ],
      [1, 2, 3, 4],
    ),
  );
  const ls = stats(loadRss);
  console.log(`(b) resident memory of the server process (VmRSS, MiB), PostgreSQL database`);
  console.log(
    textTable(
      ['phase', 'samples', 'min', 'median', 'max', 'req/s', 'non-2xx', 'socket err'],
      [
        [
          'idle after start',
          idleSamples.length,
          ...Object.values(stats(idleSamples)).map((v) => fmt(v, 1)),
          '-',
          '-',
          '-',
        ],
        [
          `GET by id, ${options.load_seconds} s -c${options.connections}`,
          loadRss.length,
          fmt(ls.min, 1),
          fmt(ls.median, 1),
          fmt(ls.max, 1),
          fmt(loadWrk.rps, 0),
          loadWrk.non2xx,
          loadWrk.socket_errors,
        ],
      ],
      [1, 2, 3, 4, 5, 6, 7],
    ),
  );
  console.log(`peak RSS (VmHWM) after the load: ${fmt(hwm, 1)} MiB\n`);
  console.log(
    `(c) soak: ${options.soak_seconds} s, ${fmt(soakWrk.rps, 0)} req/s, p99 ${fmt(soakWrk.p99_ms)} ms, ${soakWrk.non2xx} non-2xx, ${soakWrk.socket_errors} socket errors; memory in MiB`,
  );
  console.log(
    textTable(
      ['t s', 'RSS', 'heap used', 'heap total', 'live heap', 'external'],
      soakSamples.map((s) => [
        fmt(s.t_s, 0),
        fmt(s.rss_mb, 1),
        fmt(s.heap_used_mb, 1),
        fmt(s.heap_total_mb, 1),
        fmt(s.heap_live_mb, 1),
        fmt(s.external_mb, 1),
      ]),
      [0, 1, 2, 3, 4, 5],
    ),
  );
  const g = (key, label) =>
    `${label} ${fmt(growth[key].first_window_mean, 1)} -> ${fmt(growth[key].last_window_mean, 1)} MiB (${growth[key].growth >= 0 ? '+' : ''}${fmt(growth[key].growth, 1)}, ${fmt(growth[key].growth_percent, 1)} %)`;
  console.log(
    `growth, mean of the first ${fmt(window, 0)} s vs the last ${fmt(window, 0)} s: ${g('rss_mb', 'RSS')}; ${g('heap_used_mb', 'heap used')}${options.gc ? `; ${g('heap_live_mb', 'live heap (after full GC)')}` : ''}`,
  );
  if (tEnd < 120) {
    console.log(
      `(a soak shorter than 120 s compares overlapping halves, not minutes: indicative only)`,
    );
  }
  for (const [name, log] of Object.entries(logs)) {
    const c = log.counts;
    const notes = [...log.problems, ...log.other.filter((l) => !l.startsWith('(Use `node'))];
    if (c.warn + c.error + c.fatal === 0 && notes.length === 0) continue;
    console.log(
      `server log ${name}: ${c.warn} warning(s), ${c.error + c.fatal} error(s), statuses ${JSON.stringify(log.statuses)}`,
    );
    for (const n of notes) console.log(`   ${n}`);
  }

  const svgFile = path.join(RESULTS_DIR, 'soak.svg');
  writeFileSync(
    svgFile,
    soakSvg({ samples: soakSamples, machine, options, window: round(window, 0) }),
  );
  const out = path.join(RESULTS_DIR, 'footprint.json');
  writeJson(out, {
    ...machine,
    options,
    movies: MOVIES,
    startup_ms: {
      postgres: {
        ...stats(pgTimes),
        runs: pgTimes.map((ms, i) => ({ run: i + 1, ms: round(ms) })),
      },
      embedded_existing: {
        ...stats(pgliteTimes),
        runs: pgliteTimes.map((ms, i) => ({ run: i + 1, ms: round(ms) })),
      },
      embedded_first_start: round(firstEmbedded),
    },
    memory_mb: {
      idle: {
        ...stats(idleSamples),
        samples: idleSamples.map((v, i) => ({ i, rss_mb: round(v) })),
      },
      load: { ...stats(loadRss), hwm_after: round(hwm), samples: loadSamples, wrk: loadWrk },
    },
    soak: { samples: soakSamples, window_s: round(window, 0), growth, wrk: soakWrk },
    server_logs: logs,
    server_log_sizes_mb: logSizes,
    logs: options.keep_logs ? tmp : null,
  });
  console.log(
    `\nwrote ${rel(out)} and ${rel(svgFile)}${options.keep_logs ? ` (logs kept in ${tmp})` : ''}`,
  );
  return 0;
}

runMain(main);
