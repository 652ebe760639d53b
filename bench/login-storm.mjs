#!/usr/bin/env node
// Do logins stall reads? Measures GET /movies/new alone, then the same GET load while a
// second wrk drives POST /token (argon2id verification) as hard as it can. See bench/README.md.
//
// usage: node bench/login-storm.mjs [--duration S] [--token-connections C] [--connections C]
//                                   [--cycles N] [--warmup S] [--set MYAPI_NAME=VALUE]... [--no-build]
//
// Uses the local PostgreSQL server ($BENCH_PG_DSN, default postgresql://postgres@127.0.0.1:5432/postgres):
// creates the database myapi_bench_storm (dropped first if it exists, and at the end),
// migrates it, adds 10000 synthetic movies and a user, serves it on a free port and writes
// bench/results/login-storm.json.
import path from 'node:path';
import {
  build,
  commandLine,
  fmt,
  freshDatabase,
  getToken,
  machineInfo,
  machineLine,
  median,
  myapi,
  onCleanup,
  rel,
  requireCommand,
  RESULTS_DIR,
  runMain,
  serverEnv,
  runWrk,
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
} from './lib/common.mjs';

const DATABASE = 'myapi_bench_storm';
const EMAIL = 'bench@example.com';
const PASSWORD = 'login-storm-password-1';
const READ_PATH = '/movies/new?year=2020&rating=9';

const USAGE = `usage: node bench/login-storm.mjs [options]
  --duration S            seconds of each measured phase (default 10)
  --cycles N              alternations of phase (a) and phase (b) (default 3)
  --connections C         wrk connections for GET ${READ_PATH} (default 16)
  --token-connections C   wrk connections for POST /token in phase (b) (default 32)
  --warmup S              unmeasured GET load before phase (a) (default 2, 0 = none)
  --set MYAPI_NAME=VALUE  a server setting (repeatable), e.g. --set MYAPI_PASSWORDS__DUTY_CYCLE=0.25;
                          the server gets none of the caller's MYAPI_* variables
  --no-build              do not run \`npm run build\` first
env: BENCH_PG_DSN (admin DSN of the local PostgreSQL server)`;

function parseOptions() {
  const { values, int, settings } = commandLine('login-storm', USAGE, {
    duration: { type: 'string', default: '10' },
    cycles: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
    'token-connections': { type: 'string', default: '32' },
    warmup: { type: 'string', default: '2' },
    set: { type: 'string', multiple: true },
    'no-build': { type: 'boolean', default: false },
  });
  return {
    duration: int('duration', 1),
    cycles: int('cycles', 1),
    connections: int('connections', 1),
    token_connections: int('token-connections', 1),
    warmup: int('warmup', 0),
    settings: settings(),
    build: !values['no-build'],
  };
}

const COUNTS = new Set([
  'requests',
  's2xx',
  's200',
  's503',
  's503_retry_after',
  'other',
  'non2xx',
  'connect',
  'read',
  'write',
  'timeout',
  'socket_errors',
]);

/** One phase over the cycles: counts added up, rates and latencies the median of the cycles. */
function medianResult(results) {
  const merged = {};
  for (const key of Object.keys(results[0])) {
    const values = results.map((r) => r[key]);
    merged[key] = COUNTS.has(key) ? values.reduce((a, b) => a + b, 0) : median(values);
  }
  return merged;
}

function describeSettings(settings) {
  const pairs = Object.entries(settings).map(([name, value]) => `${name}=${value}`);
  return pairs.length === 0 ? 'the defaults' : `the defaults but ${pairs.join(' ')}`;
}

async function main() {
  const options = parseOptions();
  requireCommand('wrk', 'run ../shared/bench/setup.sh once (apt-get install wrk)');
  await waitForQuietMachine();
  if (options.build) build();
  const machine = machineInfo();
  const tmp = tempDir('myapi-storm-');
  const logFile = path.join(tmp, 'server.log');

  console.error(`== database ${DATABASE}: migrate, 10000 synthetic movies, user ${EMAIL}`);
  const dsn = await freshDatabase(DATABASE);
  const env = serverEnv({
    MYAPI_DATABASE__DSN: dsn,
    MYAPI_TOKEN_KEY: tokenKey(),
    MYAPI_LOG_LEVEL: 'info',
    ...options.settings,
  });
  myapi(['migrate'], env);
  myapi(['seed', '--synthetic', '10000'], env);
  myapi(['create-user', '--name', 'Login Storm', '--email', EMAIL, '--password', PASSWORD], env);

  const server = await startServer({ env, logFile });
  onCleanup(() => stopProcess(server));
  const startupMs = await waitReady(server, performance.now());
  console.error(
    `== myapi serve: ${server.baseUrl} (pid ${server.pid}, ready in ${fmt(startupMs, 0)} ms, log ${logFile})`,
  );
  const token = await getToken(server.baseUrl, EMAIL, PASSWORD);

  const read = (duration, name) =>
    runWrk({
      url: server.baseUrl + READ_PATH,
      script: 'read.lua',
      args: ['static'],
      duration,
      connections: options.connections,
      token,
      logFile: path.join(tmp, `wrk-${name}.txt`),
    });

  if (options.warmup > 0) {
    console.error(`== warm-up: GET ${READ_PATH} for ${options.warmup} s`);
    await read(options.warmup, 'warmup');
  }
  // Phases (a) and (b) alternate: this machine's speed drifts by tens of percent within minutes,
  // so one (a) followed by one (b) would measure the drift as much as the logins.
  const cycles = [];
  for (let cycle = 1; cycle <= options.cycles; cycle++) {
    const of = `cycle ${cycle}/${options.cycles}`;
    console.error(
      `== ${of} (a) GET ${READ_PATH} alone: ${options.connections} connections, ${options.duration} s`,
    );
    const alone = await read(options.duration, `a-reads-${cycle}`);
    await sleep(1000);
    console.error(
      `== ${of} (b) the same GET load + POST /token at ${options.token_connections} connections, ${options.duration} s`,
    );
    const [during, storm] = await Promise.all([
      read(options.duration, `b-reads-${cycle}`),
      runWrk({
        url: `${server.baseUrl}/token`,
        script: 'token.lua',
        args: [EMAIL, PASSWORD],
        duration: options.duration,
        connections: options.token_connections,
        logFile: path.join(tmp, `wrk-b-token-${cycle}.txt`),
      }),
    ]);
    // The logins wrk left queued are still hashing: the next (a) starts once they are done. The
    // queue is first come, first served, so a login of our own returns after them.
    await getToken(server.baseUrl, EMAIL, PASSWORD, 300_000);
    const ratio = during.p99_ms / alone.p99_ms;
    console.error(
      `   p99 (a) ${fmt(alone.p99_ms)} ms, (b) ${fmt(during.p99_ms)} ms: ${fmt(ratio, 2)}x; ${fmt(storm.rps, 1)} logins/s`,
    );
    cycles.push({ alone, during, storm, p99_ratio: ratio, rps_ratio: during.rps / alone.rps });
  }

  await stopProcess(server);
  const log = summarizeLog(logFile);

  const alone = medianResult(cycles.map((c) => c.alone));
  const during = medianResult(cycles.map((c) => c.during));
  const storm = medianResult(cycles.map((c) => c.storm));
  const row = (phase, endpoint, r) => [
    phase,
    endpoint,
    fmt(r.rps, 1),
    fmt(r.p50_ms),
    fmt(r.p99_ms),
    fmt(r.max_ms),
    r.requests,
    r.non2xx,
    r.socket_errors,
  ];
  const p99Ratio = during.p99_ms / alone.p99_ms;
  const rpsRatio = during.rps / alone.rps;
  console.log(
    `\nLogin storm: ${machineLine(machine)}\n` +
      `GET ${READ_PATH} at -c${options.connections}; POST /token at -c${options.token_connections}; ` +
      `${options.cycles} cycles of (a) ${options.duration} s, (b) ${options.duration} s\n` +
      `server settings: ${describeSettings(options.settings)}\n` +
      `req/s, p50, p99 and max: medians over the cycles; requests and errors: totals\n`,
  );
  console.log(
    textTable(
      [
        'phase',
        'endpoint',
        'req/s',
        'p50 ms',
        'p99 ms',
        'max ms',
        'requests',
        'non-2xx',
        'socket err',
      ],
      [
        row('(a) reads alone', 'movies_new', alone),
        row('(b) reads + logins', 'movies_new', during),
        row('(b) reads + logins', 'token', storm),
      ],
      [2, 3, 4, 5, 6, 7, 8],
    ),
  );
  console.log(
    `POST /token statuses: 200: ${storm.s200}, 503: ${storm.s503} (${storm.s503_retry_after} with Retry-After), other: ${storm.other}`,
  );
  console.log(
    `p99(b)/p99(a) for the reads: ${fmt(p99Ratio, 2)} (cycles: ${cycles.map((c) => fmt(c.p99_ratio, 2)).join(', ')}); ` +
      `req/s(b)/req/s(a): ${fmt(rpsRatio, 2)}`,
  );
  const levels = log.counts;
  console.log(
    `server log: ${levels.warn} warning(s), ${levels.error + levels.fatal} error(s); statuses ${JSON.stringify(log.statuses)}`,
  );
  for (const p of [...log.problems, ...log.other]) console.log(`   ${p}`);

  const out = path.join(RESULTS_DIR, 'login-storm.json');
  writeJson(out, {
    ...machine,
    options,
    read_path: READ_PATH,
    server_ready_ms: startupMs,
    reads_alone: alone,
    reads_during_logins: during,
    logins: storm,
    ratios: { p99_reads_b_over_a: p99Ratio, rps_reads_b_over_a: rpsRatio },
    cycles,
    server_log: log,
    logs: tmp,
  });
  console.log(`\nwrote ${rel(out)} (server and wrk logs kept in ${tmp})`);
  const failed = alone.socket_errors + during.socket_errors + alone.non2xx + during.non2xx;
  return failed > 0 ? 1 : 0;
}

runMain(main);
