#!/usr/bin/env node
// CPU per request of the server process and of its PostgreSQL backends, myapi next to raw-node,
// on the shared harness's data set: the A/B tool behind "where the time goes" in the README (the
// harness reports req/s and latency, not whose CPU a request spent). See bench/README.md.
//
// usage: node bench/cpu-per-request.mjs [--duration S] [--runs N] [--logins S] [--set MYAPI_NAME=VALUE]... [--no-build]
//
// Uses the local PostgreSQL server ($BENCH_PG_DSN, default postgresql://postgres@127.0.0.1:5432/postgres):
// creates the database myapi_bench_cpu (dropped first if it exists, and at the end), loads the
// harness's schema and 10,000 movies, runs `myapi migrate`, then per run and target starts the
// server, logs in, and for each endpoint runs wrk -t1 -c32 (2 s warm-up, then S s measured),
// reading utime+stime from /proc for the server, its child processes (myapi's hashing process)
// and every backend of the database. With --logins S, POST /token too (wrk -t1 -c4, S seconds).
import { existsSync, openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  build,
  commandLine,
  capture,
  freePort,
  freshDatabase,
  getToken,
  myapi,
  onCleanup,
  ROOT,
  requireCommand,
  run,
  runMain,
  serverEnv,
  runWrk,
  sleep,
  spawnTracked,
  startServer,
  stopProcess,
  tempDir,
  textTable,
  tokenKey,
  waitForQuietMachine,
  waitReady,
} from './lib/common.mjs';

const DATABASE = 'myapi_bench_cpu';
const CONNECTIONS = 32;
const WARMUP_S = 2;
const HARNESS = path.resolve(ROOT, '..', 'shared', 'bench');
const RAW_NODE = path.join(HARNESS, 'baselines', 'raw-node');
/** The harness's user (../shared/bench/seed.mjs), whose bcrypt hash both targets can verify. */
const USER = { email: 'bench@example.com', password: 'bench-password' };
const READS = [
  { name: 'movie_by_id', path: '/movies/', script: 'read.lua', args: ['by_id', '10000'] },
  {
    name: 'movies_new',
    path: '/movies/new?year=2020&rating=9',
    script: 'read.lua',
    args: ['static'],
  },
];
/** The shared harness's login load: 4 connections, as many logins as the hashing allows. */
const LOGINS = {
  name: 'token',
  path: '/token',
  script: 'token.lua',
  args: [USER.email, USER.password],
  connections: 4,
  warmupSeconds: 4,
};

const USAGE = `usage: node bench/cpu-per-request.mjs [options]
  --duration S   seconds of each measured wrk run (default 8)
  --runs N       runs of both targets (default 2)
  --logins S     also POST /token for S seconds (4 connections, after 4 s of warm-up), with the
                 CPU of the server's child processes (myapi's hashing process) and the total
  --set MYAPI_NAME=VALUE  adds a third target, myapi+set, started with these settings
                 (repeatable), to compare with plain myapi in the same run
  --no-build     do not run \`npm run build\` first
env: BENCH_PG_DSN (admin DSN of the local PostgreSQL server)`;

function parseOptions() {
  const { values, int, settings } = commandLine('cpu-per-request', USAGE, {
    duration: { type: 'string', default: '8' },
    runs: { type: 'string', default: '2' },
    logins: { type: 'string', default: '0' },
    set: { type: 'string', multiple: true },
    'no-build': { type: 'boolean', default: false },
  });
  return {
    duration: int('duration', 1),
    runs: int('runs', 1),
    logins: int('logins', 0),
    build: !values['no-build'],
    settings: settings(),
  };
}

const TICK_US = 1e6 / Number(capture('getconf', ['CLK_TCK']) || 100);

/** The fields of /proc/<pid>/stat after the command's name, or undefined when it is gone. */
function statFields(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime of a process in clock ticks (0 when it is gone). */
function cpuTicks(pid) {
  const fields = statFields(pid);
  return fields === undefined ? 0 : Number(fields[11]) + Number(fields[12]);
}

/** CPU ticks of each process that `wanted` picks by its pid, by pid. */
function ticksOfProcesses(wanted) {
  const ticks = new Map();
  for (const entry of readdirSync('/proc')) {
    if (/^[0-9]+$/.test(entry) && wanted(entry)) ticks.set(entry, cpuTicks(entry));
  }
  return ticks;
}

/** CPU ticks of the processes whose parent is `pid` (myapi's hashing process), by pid. */
function childTicks(pid) {
  return ticksOfProcesses((entry) => statFields(entry)?.[1] === String(pid));
}

/** CPU ticks of each backend serving the database, by pid. */
function backendTicks() {
  return ticksOfProcesses((entry) => {
    let title;
    try {
      title = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      return false;
    }
    return title.startsWith('postgres: ') && title.includes(` ${DATABASE} `);
  });
}

/** Ticks spent between two snapshots; a backend that started in between counts whole. */
function ticksBetween(before, after) {
  let total = 0;
  for (const [pid, ticks] of after) total += ticks - (before.get(pid) ?? 0);
  return total;
}

async function startRawNode(env, logFile) {
  const port = await freePort();
  const fd = openSync(logFile, 'a');
  const child = spawnTracked(process.execPath, ['server.mjs'], {
    cwd: RAW_NODE,
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.baseUrl = `http://127.0.0.1:${port}`;
  // raw-node has no /ready: any answer means it listens.
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`raw-node exited (${child.exitCode})`);
    const answered = await fetch(child.baseUrl).then(
      async (response) => (await response.arrayBuffer(), true),
      () => false,
    );
    if (answered) return child;
    await sleep(50);
  }
  throw new Error('raw-node did not listen within 30 s');
}

async function main() {
  const options = parseOptions();
  for (const cmd of ['wrk', 'psql']) {
    requireCommand(cmd, 'run ../shared/bench/setup.sh once');
  }
  await waitForQuietMachine();
  if (options.build) build();
  if (!existsSync(path.join(RAW_NODE, 'node_modules', 'pg'))) {
    run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: RAW_NODE });
  }
  const tmp = tempDir('myapi-cpu-');

  console.error(`== database ${DATABASE}: the harness's schema and 10000 movies, myapi migrate`);
  const dsn = await freshDatabase(DATABASE);
  run('psql', ['-q', dsn, '-f', path.join(HARNESS, 'sql', 'schema.sql')], { quiet: true });
  const seed = run(process.execPath, [path.join(HARNESS, 'seed.mjs'), '--movies', '10000'], {
    quiet: true,
  });
  run('psql', ['-q', dsn], { input: seed, quiet: true });
  // No argon2 rehash of the harness user's bcrypt hash: raw-node must log in after myapi.
  const env = serverEnv({
    MYAPI_DATABASE__DSN: dsn,
    MYAPI_TOKEN_KEY: tokenKey(),
    MYAPI_PASSWORDS__UPGRADE_LEGACY: 'false',
  });
  myapi(['migrate'], env);

  const rows = [];
  for (let round = 1; round <= options.runs; round++) {
    const variant = Object.keys(options.settings).length > 0 ? ['myapi+set'] : [];
    // The two myapi targets swap places each run, so neither always follows the other.
    const myapis = round % 2 === 1 ? ['myapi', ...variant] : [...variant, 'myapi'];
    for (const target of ['raw-node', ...myapis]) {
      const logFile = path.join(tmp, `${target}-${round}.log`);
      let server;
      if (target !== 'raw-node') {
        const targetEnv = target === 'myapi' ? env : { ...env, ...options.settings };
        server = await startServer({ env: targetEnv, logFile });
        onCleanup(() => stopProcess(server));
        await waitReady(server, performance.now());
      } else {
        server = await startRawNode(env, logFile);
      }
      const token = await getToken(server.baseUrl, USER.email, USER.password);
      const reads = READS.map((read) => ({
        ...read,
        connections: CONNECTIONS,
        warmupSeconds: WARMUP_S,
        duration: options.duration,
        token,
      }));
      const logins = options.logins > 0 ? [{ ...LOGINS, duration: options.logins }] : [];
      for (const endpoint of [...reads, ...logins]) {
        const wrk = (duration) =>
          runWrk({
            url: server.baseUrl + endpoint.path,
            script: endpoint.script,
            args: endpoint.args,
            duration,
            connections: endpoint.connections,
            token: endpoint.token,
          });
        await wrk(endpoint.warmupSeconds);
        const serverBefore = cpuTicks(server.pid);
        const childrenBefore = childTicks(server.pid);
        const backendsBefore = backendTicks();
        const result = await wrk(endpoint.duration);
        const perRequest = (ticks) => (ticks * TICK_US) / result.requests;
        const serverUs = perRequest(cpuTicks(server.pid) - serverBefore);
        const childrenUs = perRequest(ticksBetween(childrenBefore, childTicks(server.pid)));
        const backendUs = perRequest(ticksBetween(backendsBefore, backendTicks()));
        rows.push([
          target,
          endpoint.name,
          result.rps.toFixed(endpoint.name === LOGINS.name ? 1 : 0),
          result.p99_ms.toFixed(2),
          serverUs.toFixed(0),
          childrenUs.toFixed(0),
          backendUs.toFixed(0),
          (serverUs + childrenUs + backendUs).toFixed(0),
        ]);
        console.error(`   ${rows.at(-1).join('  ')}`);
      }
      await stopProcess(server);
    }
  }
  console.log(
    textTable(
      [
        'target',
        'endpoint',
        'req/s',
        'p99 ms',
        'server us/req',
        'children us/req',
        'postgres us/req',
        'total us/req',
      ],
      rows,
      [2, 3, 4, 5, 6, 7],
    ),
  );
}

runMain(main);
