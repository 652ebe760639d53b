#!/usr/bin/env node
// Does every movies read stay as fast at 1,000,000 movies as at 10,000? See bench/README.md.
//
// usage: node bench/scale.mjs [--large N] [--small N] [--requests N] [--rounds N]
//                             [--no-import] [--no-build]
//
// Each catalogue is the 96 demo films plus N synthetic ones.
// Uses the local PostgreSQL server ($BENCH_PG_DSN): creates myapi_bench_scale_small and
// myapi_bench_scale_large (and myapi_bench_scale_import), dropped first if they exist and at
// the end. Both catalogues are served at once and measured in alternation, round after round,
// so a change in the machine's load hits both sizes alike. Writes bench/results/scale.json.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pg from 'pg';
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
  RESULTS_DIR,
  run,
  runMain,
  serverEnv,
  startServer,
  stopProcess,
  tempDir,
  textTable,
  tokenKey,
  waitForQuietMachine,
  waitReady,
  writeJson,
} from './lib/common.mjs';

const EMAIL = 'scale@example.com';
const PASSWORD = 'scale-bench-password-1';

const USAGE = `usage: node bench/scale.mjs [options]
  --small N      movies in the small catalogue (default 10000)
  --large N      movies in the large catalogue (default 1000000)
  --requests N   measured requests per endpoint, size and round, one at a time (default 400)
  --rounds N     rounds (default 3); figures are medians over rounds
  --no-import    skip timing export-movies and import-movies of the large catalogue
  --no-build     do not run \`npm run build\` first
env: BENCH_PG_DSN (admin DSN of the local PostgreSQL server)`;

function parseOptions() {
  const { values, int } = commandLine('scale', USAGE, {
    small: { type: 'string', default: '10000' },
    large: { type: 'string', default: '1000000' },
    requests: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '3' },
    'no-import': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
  });
  return {
    small: int('small', 100),
    large: int('large', 100),
    requests: int('requests', 10),
    rounds: int('rounds', 1),
    import: !values['no-import'],
    build: !values['no-build'],
  };
}

/** The cursor the API would hand out for this position (its format: base64url JSON). */
const cursor = (sort, order, value, id) =>
  Buffer.from(JSON.stringify([sort, order, value, id])).toString('base64url');

/**
 * The read endpoints, each with the SQL that serves it (as the CRUD layer writes it) for
 * EXPLAIN. `n` is the catalogue's size: ids and cursors scale with it, so every request finds
 * rows at either size.
 */
const ENDPOINTS = [
  {
    name: 'GET /movies/{id}',
    url: (n, i) => `/movies/${1 + ((i * 7919) % n)}`,
    sql: (n) => `select * from myapi.movies where movie_id = ${Math.floor(n / 2)} limit 1`,
  },
  {
    name: 'GET /movies/?movie_id=',
    url: (n, i) => `/movies/?movie_id=${1 + ((i * 104_729) % n)}`,
    sql: (n) => `select * from myapi.movies where movie_id = ${Math.floor(n / 3)} limit 1`,
  },
  {
    // A page of 50 at both sizes: the default page (1000) would return 53 rows at 10k and 1000
    // at 1M, which is not the same work. A named statement runs it, on its generic plan.
    name: 'GET /movies/new?year=2020&rating=9&limit=50',
    url: () => '/movies/new?year=2020&rating=9&limit=50',
    sql: () => [
      'set plan_cache_mode = force_generic_plan',
      'prepare movies_new(int, numeric, int) as select * from myapi.movies where released >= $1 and rating >= $2 order by released, movie_id limit $3',
      'execute movies_new(2020, 9, 51)',
    ],
  },
  {
    name: 'GET /movies (first page + bounded total)',
    url: () => '/movies',
    sql: () => [
      'select * from myapi.movies order by movie_id limit 51',
      'select count(*) from (select 1 from myapi.movies limit 1001) matching',
    ],
  },
  {
    name: 'GET /movies?sort=rating&order=desc (mid-table page)',
    url: (n) =>
      `/movies?sort=rating&order=desc&cursor=${cursor('rating', 'desc', 5, Math.floor(n / 2))}`,
    sql: (n) =>
      `select * from myapi.movies where (rating, movie_id) < (5::numeric, ${Math.floor(n / 2)}) order by rating desc, movie_id desc limit 51`,
  },
  {
    name: 'GET /movies?sort=title (page 2)',
    url: () => `/movies?sort=title&cursor=${cursor('title', 'asc', 'Synthetic movie 5', 5)}`,
    sql: () =>
      "select * from myapi.movies where (title, movie_id) > ('Synthetic movie 5'::text, 5) order by title, movie_id limit 51",
  },
  {
    name: 'GET /movies?released_from=2000&released_to=2005&rating_min=9&sort=released',
    url: () => '/movies?released_from=2000&released_to=2005&rating_min=9&sort=released',
    sql: () => [
      'select * from myapi.movies where released >= 2000 and released <= 2005 and rating >= 9 order by released, movie_id limit 51',
      'select count(*) from (select 1 from myapi.movies where released >= 2000 and released <= 2005 and rating >= 9 limit 1001) matching',
    ],
  },
  {
    name: 'GET /movies?q=GODFÄTHER (title search, 2 matches at both sizes)',
    url: () => `/movies?q=${encodeURIComponent('GODFÄTHER')}`,
    sql: () => [
      "select * from myapi.movies where myapi.search_key(title) like '%' || myapi.search_key('GODFÄTHER') || '%' order by movie_id limit 51",
      "select count(*) from (select 1 from myapi.movies where myapi.search_key(title) like '%' || myapi.search_key('GODFÄTHER') || '%' limit 1001) matching",
    ],
  },
  {
    name: 'GET /movies?q=4242 (title search, matches grow: 1 vs 299)',
    // Not the same work at both sizes (a search returning 299x the rows), so it is reported but
    // not held to the 2x bound: it shows what each matching row costs.
    informative: true,
    url: () => '/movies?q=4242',
    sql: () => [
      "select * from myapi.movies where myapi.search_key(title) like '%' || myapi.search_key('4242') || '%' order by movie_id limit 51",
      "select count(*) from (select 1 from myapi.movies where myapi.search_key(title) like '%' || myapi.search_key('4242') || '%' limit 1001) matching",
    ],
  },
];

/** One request at a time over one kept-alive connection: latency without queueing. */
async function measure(baseUrl, token, makeUrl, count) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const { hostname, port } = new URL(baseUrl);
  const once = (url) =>
    new Promise((resolve, reject) => {
      const started = process.hrtime.bigint();
      const request = http.get(
        { hostname, port, path: url, agent, headers: { authorization: `Bearer ${token}` } },
        (response) => {
          response.resume();
          response.on('end', () => {
            if (response.statusCode !== 200) {
              reject(new Error(`${url}: HTTP ${response.statusCode}`));
            } else resolve(Number(process.hrtime.bigint() - started) / 1e6);
          });
        },
      );
      request.on('error', reject);
    });
  const times = [];
  for (let i = 0; i < count; i++) times.push(await once(makeUrl(i)));
  agent.destroy();
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(count * 0.5)], p99: times[Math.floor(count * 0.99)] };
}

async function explain(dsn, statements) {
  const client = new pg.Client({ connectionString: dsn });
  await client.connect();
  try {
    const plans = [];
    for (const text of [statements].flat()) {
      if (/^(set|prepare) /.test(text)) {
        await client.query(text);
        plans.push(`> ${text}`);
        continue;
      }
      const { rows } = await client.query(`explain (analyze, costs off, timing on) ${text}`);
      plans.push([`> ${text}`, ...rows.map((row) => row['QUERY PLAN'])].join('\n'));
    }
    return plans.join('\n');
  } finally {
    await client.end();
  }
}

async function vacuum(dsn) {
  const client = new pg.Client({ connectionString: dsn });
  await client.connect();
  try {
    await client.query('vacuum analyze myapi.movies');
  } finally {
    await client.end();
  }
}

/** Runs a `myapi` command, returning its wall time in seconds and its stdout. */
function timed(args, env, options = {}) {
  const started = performance.now();
  const stdout = run(process.execPath, [path.join('dist', 'cli.js'), ...args], {
    env,
    quiet: true,
    ...options,
  });
  return { seconds: (performance.now() - started) / 1000, stdout: stdout.trim() };
}

function loadAverage() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

async function main() {
  const options = parseOptions();
  await waitForQuietMachine();
  if (options.build) build();
  const machine = machineInfo();
  const tmp = tempDir('myapi-scale-');
  const key = tokenKey();
  const sizes = [
    { label: 'small', movies: options.small },
    { label: 'large', movies: options.large },
  ];
  const timings = {};

  for (const size of sizes) {
    size.dsn = await freshDatabase(`myapi_bench_scale_${size.label}`);
    size.env = serverEnv({
      MYAPI_DATABASE__DSN: size.dsn,
      MYAPI_TOKEN_KEY: key,
      MYAPI_LOG_LEVEL: 'warn',
    });
    myapi(['migrate'], size.env);
    // The 96 demo films (ids 1-96) give both catalogues the same few real titles to search.
    myapi(['seed'], size.env);
    console.error(
      `== ${size.label}: myapi seed --synthetic ${size.movies} (load ${loadAverage()})`,
    );
    const seeded = timed(['seed', '--synthetic', String(size.movies)], size.env);
    console.error(`   ${seeded.stdout}`);
    timings[`seed_${size.movies}_s`] = Number(seeded.seconds.toFixed(1));
    myapi(['create-user', '--name', 'Scale', '--email', EMAIL, '--password', PASSWORD], size.env);
    await vacuum(size.dsn);
  }

  if (options.import) {
    const large = sizes[1];
    const file = path.join(tmp, 'movies.csv');
    console.error(`== export-movies of ${large.movies} movies to ${file} (load ${loadAverage()})`);
    const started = performance.now();
    run('sh', ['-c', `"${process.execPath}" dist/cli.js export-movies > "${file}"`], {
      env: large.env,
      quiet: true,
    });
    timings.export_s = Number(((performance.now() - started) / 1000).toFixed(1));
    timings.export_bytes = statSync(file).size;
    const dsn = await freshDatabase('myapi_bench_scale_import');
    const env = serverEnv({ MYAPI_DATABASE__DSN: dsn, MYAPI_TOKEN_KEY: key });
    myapi(['migrate'], env);
    console.error(`== import-movies of that file into a fresh database (load ${loadAverage()})`);
    const imported = timed(['import-movies', file], env);
    console.error(`   ${imported.stdout}`);
    timings.import_s = Number(imported.seconds.toFixed(1));
  }

  for (const size of sizes) {
    size.server = await startServer({
      env: size.env,
      logFile: path.join(tmp, `${size.label}.log`),
    });
    onCleanup(() => stopProcess(size.server));
    await waitReady(size.server, performance.now());
    size.token = await getToken(size.server.baseUrl, EMAIL, PASSWORD);
  }

  const samples = ENDPOINTS.map(() => ({ small: [], large: [] }));
  for (let round = 1; round <= options.rounds; round++) {
    console.error(`== round ${round}/${options.rounds} (load ${loadAverage()})`);
    for (const [e, endpoint] of ENDPOINTS.entries()) {
      // Alternate which size goes first, so neither always follows the other.
      const order = (round + e) % 2 === 0 ? sizes : [...sizes].reverse();
      for (const size of order) {
        const url = (i) => endpoint.url(size.movies, i);
        await measure(size.server.baseUrl, size.token, url, Math.ceil(options.requests / 4));
        samples[e][size.label].push(
          await measure(size.server.baseUrl, size.token, url, options.requests),
        );
      }
    }
  }

  const results = ENDPOINTS.map((endpoint, e) => {
    const of = (label, key) => median(samples[e][label].map((s) => s[key]));
    return {
      endpoint: endpoint.name,
      informative: endpoint.informative === true,
      small_p50_ms: of('small', 'p50'),
      large_p50_ms: of('large', 'p50'),
      small_p99_ms: of('small', 'p99'),
      large_p99_ms: of('large', 'p99'),
      ratio_p50: of('large', 'p50') / of('small', 'p50'),
      ratio_p99: of('large', 'p99') / of('small', 'p99'),
    };
  });

  const plans = [];
  for (const endpoint of ENDPOINTS) {
    for (const size of sizes) {
      plans.push(
        `### ${endpoint.name} at ${size.movies} movies\n${await explain(size.dsn, endpoint.sql(size.movies))}`,
      );
    }
  }

  console.log(`\n${machineLine(machine)}; load average at the end ${loadAverage()}`);
  console.log(
    `latency of one request at a time, ms (median over ${options.rounds} rounds of ${options.requests} requests)\n`,
  );
  console.log(
    textTable(
      [
        'endpoint',
        `p50 ${options.small}`,
        `p50 ${options.large}`,
        'x',
        `p99 ${options.small}`,
        `p99 ${options.large}`,
        'x',
      ],
      results.map((r) => [
        r.endpoint,
        fmt(r.small_p50_ms, 2),
        fmt(r.large_p50_ms, 2),
        fmt(r.ratio_p50, 2),
        fmt(r.small_p99_ms, 2),
        fmt(r.large_p99_ms, 2),
        fmt(r.ratio_p99, 2),
      ]),
      [1, 2, 3, 4, 5, 6],
    ),
  );
  console.log(
    `\n${Object.entries(timings)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n')}\n`,
  );
  console.log(plans.join('\n\n'));

  const file = path.join(RESULTS_DIR, 'scale.json');
  writeJson(file, { machine, options, timings, results, plans });
  writeFileSync(path.join(RESULTS_DIR, 'scale-plans.txt'), `${plans.join('\n\n')}\n`);
  console.error(`\n== wrote ${rel(file)} and bench/results/scale-plans.txt`);
  const worst = Math.max(...results.filter((r) => !r.informative).map((r) => r.ratio_p50));
  return worst <= 2 ? 0 : 1;
}

runMain(main);
