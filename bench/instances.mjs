#!/usr/bin/env node
// How req/s changes with 1, 2 and 3 separate `myapi serve` instances on one PostgreSQL, measured
// with the shared harness in one run. See bench/README.md ("Many instances").
//
// usage: node bench/instances.mjs [--rounds N] [--duration S] [--connections C] [--label L]
//
// Builds the project, then runs ../shared/bench/run.sh (or $BENCH_HARNESS) with the targets
// x1, x2, x3 (N instances behind bench/lib/balance.mjs, a round-robin TCP balancer; x1 is
// behind it too, so all carry its cost alike), x1-unnamed (one instance with
// MYAPI_DATABASE__PREPARED_STATEMENTS=false, as behind PgBouncer in transaction mode) and
// raw-node (the reference). Each instance has its own pool of MYAPI_DATABASE__POOL_MAX (10)
// connections to the harness's PostgreSQL. Prints the table and writes
// bench/results/instances-<label>.json. Exits with the harness's status.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  build,
  commandLine,
  fmt,
  localStamp,
  machineInfo,
  machineLine,
  markdownTable,
  rel,
  RESULTS_DIR,
  ROOT,
  tempDir,
  waitForQuietMachine,
  writeJson,
} from './lib/common.mjs';

const USAGE = `usage: node bench/instances.mjs [options]
  --rounds N        rounds; targets alternate order each round (default 2)
  --duration S      seconds per measured GET run (default 10)
  --connections C   wrk connections for the GET endpoints (default 32)
  --label L         results file bench/results/instances-L.json (default: YYYY-MM-DD-HHMM)
env: BENCH_HARNESS   the harness script (default ../shared/bench/run.sh from the project root)`;

const ENDPOINTS = ['movie_by_id', 'movies_new'];
const MIGRATE = 'bin/myapi migrate >/dev/null';
const SERVE_ENV = 'MYAPI_PASSWORDS__UPGRADE_LEGACY=false';
const TARGETS = [
  ['x1', `${MIGRATE} && ${SERVE_ENV} exec node bench/lib/balance.mjs 1`],
  ['x2', `${MIGRATE} && ${SERVE_ENV} exec node bench/lib/balance.mjs 2`],
  ['x3', `${MIGRATE} && ${SERVE_ENV} exec node bench/lib/balance.mjs 3`],
  [
    'x1-unnamed',
    `${MIGRATE} && ${SERVE_ENV} MYAPI_DATABASE__PREPARED_STATEMENTS=false exec node bench/lib/balance.mjs 1`,
  ],
];

function parseOptions() {
  const { values, int } = commandLine('instances', USAGE, {
    rounds: { type: 'string', default: '2' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    label: { type: 'string' },
  });
  const label = values.label ?? localStamp().replace(' ', '-').replace(':', '');
  if (!/^[A-Za-z0-9_.-]+$/.test(label)) {
    console.error(`instances: --label may only use letters, digits, '_', '.' and '-'`);
    process.exit(2);
  }
  return {
    rounds: int('rounds', 1),
    duration: int('duration', 1),
    connections: int('connections', 1),
    label,
  };
}

function runHarness(harness, args) {
  return new Promise((resolve) => {
    const child = spawn(harness, args, { cwd: ROOT, stdio: 'inherit' });
    child.on('error', () => resolve(127));
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

async function main() {
  const options = parseOptions();
  const harness = path.resolve(ROOT, process.env.BENCH_HARNESS ?? '../shared/bench/run.sh');
  if (!existsSync(harness)) {
    console.error(`instances: no harness at ${harness} (set BENCH_HARNESS)`);
    return 2;
  }
  await waitForQuietMachine();
  build();
  const machine = machineInfo();
  const jsonFile = path.join(tempDir('myapi-instances-'), 'harness.json');
  const args = [
    '--rounds',
    String(options.rounds),
    '--duration',
    String(options.duration),
    '--connections',
    String(options.connections),
    '--token-duration',
    '2',
    '--json',
    jsonFile,
    ...TARGETS.map(([label, command]) => `${label}=cmd:${command}`),
    'raw-node',
  ];
  const status = await runHarness(harness, args);
  if (!existsSync(jsonFile)) {
    console.error(`instances: the harness exited with ${status} and wrote no results`);
    return status || 1;
  }
  const result = JSON.parse(readFileSync(jsonFile, 'utf8'));
  const rows = [];
  for (const endpoint of ENDPOINTS) {
    const of = (target) =>
      result.summary.find((s) => s.target === target && s.endpoint === endpoint);
    const one = of('x1');
    for (const [target] of [...TARGETS, ['raw-node']]) {
      const s = of(target);
      if (s === undefined) continue;
      rows.push([
        endpoint,
        target,
        fmt(s.rps),
        `${fmt(s.rpsMin)}..${fmt(s.rpsMax)}`,
        fmt(s.p99),
        one === undefined ? '' : (s.rps / one.rps).toFixed(2),
      ]);
    }
  }
  const table = markdownTable(
    ['endpoint', 'target', 'req/s', 'min..max', 'p99 ms', 'x x1'],
    rows,
    [2, 3, 4, 5],
  );
  console.log(`\n${machineLine(machine)}\n\n${table}`);
  const out = path.join(RESULTS_DIR, `instances-${options.label}.json`);
  writeJson(out, { ...machine, options, harness: { path: harness, exit_code: status }, ...result });
  console.log(`\nwrote ${rel(out)}`);
  return status;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`instances: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
    process.exit(1);
  },
);
