#!/usr/bin/env node
// HTTP benchmark of myapi against the shared harness's baselines (raw-node, fastapi), all
// measured in the same run. See bench/README.md.
//
// usage: npm run bench -- [--rounds N] [--duration S] [--connections C] [--movies N]
//                         [--workers N] [--label L]
//        npm run bench -- --from bench/results/<label>.json   (rewrite latest.md/.svg only)
//
// Builds the project, runs ../shared/bench/run.sh (or $BENCH_HARNESS) with the targets
// myapi, raw-node, fastapi (in that order: myapi's `migrate` adapts the shared database
// first), streams its output, then writes bench/results/<label>.json, latest.md and
// latest.svg. Exits with the harness's status (1 when a check failed or a run saw a
// non-2xx response or a socket error).
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  build,
  commandLine,
  fmt,
  localStamp,
  machineInfo,
  machineLine,
  markdownTable,
  niceTicks,
  PALETTE,
  rel,
  RESULTS_DIR,
  ROOT,
  shortNumber,
  summarizeLog,
  tempDir,
  waitForQuietMachine,
  writeJson,
  xmlEscape,
} from './lib/common.mjs';

const USAGE = `usage: npm run bench -- [options]
  --rounds N        rounds; targets alternate order each round (default 2)
  --duration S      seconds per measured GET run (default 10)
  --connections C   wrk connections for the GET endpoints (default 32)
  --movies N        movies seeded in the harness database (default 10000)
  --workers N       pass --workers N to \`myapi serve\` (default: not passed)
  --label L         results file name bench/results/L.json (default: YYYY-MM-DD-HHMM)
  --from FILE       no run: rewrite latest.md and latest.svg from a saved results JSON
env: BENCH_HARNESS   the harness script (default ../shared/bench/run.sh from the project root)`;

const TARGETS = ['myapi', 'raw-node', 'fastapi'];
const ENDPOINTS = [
  { key: 'movie_by_id', label: 'movie_by_id', what: 'GET /movies/?movie_id=<random>' },
  { key: 'movies_new', label: 'movies_new', what: 'GET /movies/new?year=2020&rating=9' },
  { key: 'token', label: 'token', what: 'POST /token (bcrypt cost 12)' },
];

function parseOptions() {
  const { values, int } = commandLine('bench', USAGE, {
    rounds: { type: 'string', default: '2' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    movies: { type: 'string', default: '10000' },
    workers: { type: 'string' },
    label: { type: 'string' },
    from: { type: 'string' },
  });
  const options = {
    rounds: int('rounds', 1),
    duration: int('duration', 1),
    connections: int('connections', 1),
    movies: int('movies', 1),
    workers: int('workers', 1),
  };
  if (values.from !== undefined) return { from: values.from };
  options.label = values.label ?? localStamp().replace(' ', '-').replace(':', '');
  if (!/^[A-Za-z0-9_.-]+$/.test(options.label) || options.label.startsWith('.')) {
    console.error(`bench: --label may only use letters, digits, '_', '.' and '-'`);
    process.exit(2);
  }
  if (
    options.label === 'latest' ||
    options.label === 'login-storm' ||
    options.label === 'footprint'
  ) {
    console.error(`bench: --label ${options.label} would overwrite another report`);
    process.exit(2);
  }
  return options;
}

/** Runs the harness, its output teed to the terminal and to outputFile; resolves its status. */
function runHarness(harness, args, outputFile) {
  return new Promise((resolve) => {
    const out = createWriteStream(outputFile);
    const child = spawn(harness, args, { cwd: ROOT, stdio: ['inherit', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      out.write(chunk);
    });
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      out.write(chunk);
    });
    // Ctrl-C reaches the harness too (same process group) and it cleans up after itself:
    // wait for it. A signal sent to this process alone is passed on.
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (error) => {
      console.error(`bench: cannot run ${harness}: ${error.message}`);
      out.end();
      resolve(127);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      out.end();
      resolve(code ?? (signal === 'SIGINT' ? 130 : 143));
    });
  });
}

// ------------------------------------------------------------------ report: Markdown

const get = (summary, target, endpoint) =>
  summary.find((s) => s.target === target && s.endpoint === endpoint);

function ratio(a, b) {
  return a && b && Number.isFinite(a / b) && b > 0 ? Number((a / b).toFixed(4)) : null;
}

function ratiosOf(summary) {
  return ENDPOINTS.map(({ key }) => {
    const m = get(summary, 'myapi', key);
    const r = get(summary, 'raw-node', key);
    const f = get(summary, 'fastapi', key);
    return {
      endpoint: key,
      rps_vs_raw_node: ratio(m?.rps, r?.rps),
      rps_vs_fastapi: ratio(m?.rps, f?.rps),
      p99_vs_raw_node: ratio(m?.p99, r?.p99),
      p99_vs_fastapi: ratio(m?.p99, f?.p99),
    };
  });
}

function markdown(report) {
  const { options, summary } = report;
  const stamp = localStamp(new Date(report.date));
  const rows = [];
  for (const { key } of ENDPOINTS) {
    for (const target of TARGETS) {
      const s = get(summary, target, key);
      if (!s) continue;
      rows.push([
        key,
        target,
        fmt(s.rps, 1),
        `${fmt(s.rpsMin, 1)}..${fmt(s.rpsMax, 1)}`,
        s.requests > 0 ? fmt(s.p50) : '-',
        s.requests > 0 ? fmt(s.p99) : '-',
        s.non2xx,
        s.sockErr,
      ]);
    }
  }
  const ratioRows = report.myapi_ratios.map((r) => [
    r.endpoint,
    fmt(r.rps_vs_raw_node, 2),
    fmt(r.rps_vs_fastapi, 2),
    fmt(r.p99_vs_raw_node, 2),
    fmt(r.p99_vs_fastapi, 2),
  ]);
  const log = report.myapi_server_logs;
  const logLine =
    log.counts.error + log.counts.fatal + log.counts.warn === 0
      ? 'myapi server log: no warnings or errors.'
      : `myapi server log: ${log.counts.warn} warning(s), ${log.counts.error + log.counts.fatal} error(s); first: ${log.problems.map((p) => `\`${p.replaceAll('`', "'")}\``).join(', ')}.`;
  return [
    `# myapi HTTP benchmark, ${stamp}`,
    '',
    `Machine: ${machineLine(report)}.`,
    '',
    `Run: ${options.rounds} round(s); GET endpoints: wrk -t1 -c${options.connections} -d${options.duration}s after a 2 s warm-up; token: -c4 -d5s; ${options.movies} movies; myapi \`serve\`${options.workers ? ` --workers ${options.workers}` : ''}; harness exit status ${report.harness.exit_code}. Label \`${options.label}\`.`,
    '',
    markdownTable(
      [
        'endpoint',
        'target',
        'req/s mean',
        'min..max',
        'p50 ms',
        'p99 ms',
        'non-2xx',
        'socket errors',
      ],
      rows,
      [2, 3, 4, 5, 6, 7],
    ),
    'Ratios of myapi to the baselines measured in the same run (req/s: higher is better; p99: lower is better):',
    '',
    markdownTable(
      [
        'endpoint',
        'req/s myapi/raw-node',
        'req/s myapi/fastapi',
        'p99 myapi/raw-node',
        'p99 myapi/fastapi',
      ],
      ratioRows,
      [1, 2, 3, 4],
    ),
    logLine,
    '',
    'The 2 CPUs are shared by wrk, PostgreSQL and the server: compare ratios from one run, not absolute numbers across runs. `token` is bcrypt cost 12 (~0.2 s of CPU per login) for every target: it shows that hashing stays off the event loop, not speed. Chart: [latest.svg](latest.svg).',
    '',
  ].join('\n');
}

// ------------------------------------------------------------------ report: SVG

function barChart({ x, y, width, height, title, subtitle, values, targets, whiskers }) {
  // values: target -> number (or null); whiskers: target -> [min, max] (optional)
  const parts = [];
  const axisX = x + 52;
  const plotW = width - 62;
  const plotTop = y + 38;
  const plotH = height - 38 - 46;
  const top = Math.max(...targets.map((t) => Math.max(values[t] ?? 0, whiskers?.[t]?.[1] ?? 0)), 0);
  const ticks = niceTicks(top * 1.12 || 1, 4);
  const maxTick = ticks[ticks.length - 1];
  const yOf = (v) => plotTop + plotH - (v / maxTick) * plotH;
  parts.push(
    `<text x="${x + width / 2}" y="${y + 14}" class="ctitle">${xmlEscape(title)}</text>`,
    `<text x="${x + width / 2}" y="${y + 29}" class="csub">${xmlEscape(subtitle)}</text>`,
  );
  for (const t of ticks) {
    const ty = yOf(t);
    parts.push(
      `<line x1="${axisX}" y1="${ty}" x2="${axisX + plotW}" y2="${ty}" class="grid"/>`,
      `<text x="${axisX - 6}" y="${ty + 4}" class="tick">${shortNumber(t)}</text>`,
    );
  }
  parts.push(
    `<line x1="${axisX}" y1="${plotTop}" x2="${axisX}" y2="${plotTop + plotH}" class="axis"/>`,
    `<line x1="${axisX}" y1="${plotTop + plotH}" x2="${axisX + plotW}" y2="${plotTop + plotH}" class="axis"/>`,
  );
  const groupW = plotW * 0.84;
  const barW = groupW / targets.length;
  targets.forEach((t, i) => {
    const v = values[t];
    const bx = axisX + (plotW - groupW) / 2 + i * barW + barW * 0.08;
    const bw = barW * 0.84;
    const cx = bx + bw / 2;
    parts.push(`<text x="${cx}" y="${plotTop + plotH + 16}" class="xlab">${xmlEscape(t)}</text>`);
    if (v === null || v === undefined) {
      parts.push(`<text x="${cx}" y="${plotTop + plotH - 6}" class="val">n/a</text>`);
      return;
    }
    const by = yOf(v);
    parts.push(
      `<rect x="${bx.toFixed(1)}" y="${by.toFixed(1)}" width="${bw.toFixed(1)}" height="${(plotTop + plotH - by).toFixed(1)}" fill="${PALETTE[i]}"><title>${xmlEscape(`${t}: ${fmt(v)}`)}</title></rect>`,
    );
    let labelY = by - 5;
    const w = whiskers?.[t];
    if (w && w[1] > w[0]) {
      const [y1, y2] = [yOf(w[0]), yOf(w[1])];
      parts.push(
        `<line x1="${cx}" y1="${y1}" x2="${cx}" y2="${y2}" class="whisker"/>`,
        `<line x1="${cx - 5}" y1="${y1}" x2="${cx + 5}" y2="${y1}" class="whisker"/>`,
        `<line x1="${cx - 5}" y1="${y2}" x2="${cx + 5}" y2="${y2}" class="whisker"/>`,
      );
      labelY = Math.min(labelY, y2 - 5);
    }
    parts.push(`<text x="${cx}" y="${labelY}" class="val">${shortNumber(v)}</text>`);
  });
  return parts.join('\n');
}

function svg(report) {
  const W = 900;
  const { summary, options } = report;
  const targets = TARGETS.filter((t) => summary.some((s) => s.target === t));
  const stamp = localStamp(new Date(report.date));
  const cellW = (W - 30) / 3;
  const chartH = 250;
  const panel1 = 118;
  const panel2 = panel1 + chartH + 28;
  const H = panel2 + chartH + 20;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<style>
  .title { font-size: 20px; font-weight: bold; fill: #222; }
  .sub { font-size: 12px; fill: #555; }
  .ptitle { font-size: 15px; font-weight: bold; fill: #222; }
  .ctitle { font-size: 13px; font-weight: bold; fill: #222; text-anchor: middle; }
  .csub { font-size: 11px; fill: #666; text-anchor: middle; }
  .tick { font-size: 11px; fill: #444; text-anchor: end; }
  .val { font-size: 11px; fill: #222; text-anchor: middle; }
  .xlab { font-size: 11px; fill: #444; text-anchor: middle; }
  .legend { font-size: 13px; fill: #222; }
  .grid { stroke: #e3e3e3; stroke-width: 1; }
  .axis { stroke: #888; stroke-width: 1; }
  .whisker { stroke: #222; stroke-width: 1.2; }
</style>`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="20" y="30" class="title">myapi vs raw-node and fastapi, ${xmlEscape(stamp)}</text>`,
    `<text x="20" y="50" class="sub">${xmlEscape(machineLine(report))}</text>`,
    `<text x="20" y="66" class="sub">${xmlEscape(`${options.rounds} round(s); GET: wrk -t1 -c${options.connections} -d${options.duration}s; token: -c4 -d5s; ${options.movies} movies; CPUs shared by wrk, PostgreSQL and the server`)}</text>`,
  ];
  let lx = 20;
  targets.forEach((t, i) => {
    parts.push(
      `<rect x="${lx}" y="80" width="14" height="14" fill="${PALETTE[i]}"/>`,
      `<text x="${lx + 20}" y="92" class="legend">${xmlEscape(t)}</text>`,
    );
    lx += 30 + t.length * 8;
  });
  parts.push(
    `<text x="20" y="${panel1 + 2}" class="ptitle">Throughput, req/s (higher is better; bar = mean, whisker = min..max over rounds)</text>`,
    `<text x="20" y="${panel2 + 2}" class="ptitle">Latency p99, ms (lower is better; mean over rounds)</text>`,
  );
  ENDPOINTS.forEach((e, k) => {
    const x = 15 + k * cellW;
    const rows = Object.fromEntries(targets.map((t) => [t, get(summary, t, e.key)]));
    parts.push(
      barChart({
        x,
        y: panel1 + 12,
        width: cellW,
        height: chartH,
        title: e.label,
        subtitle: e.what,
        targets,
        values: Object.fromEntries(targets.map((t) => [t, rows[t]?.rps ?? null])),
        whiskers: Object.fromEntries(
          targets.map((t) => [t, rows[t] ? [rows[t].rpsMin, rows[t].rpsMax] : null]),
        ),
      }),
      barChart({
        x,
        y: panel2 + 12,
        width: cellW,
        height: chartH,
        title: e.label,
        subtitle: e.what,
        targets,
        values: Object.fromEntries(
          targets.map((t) => [t, rows[t] && rows[t].requests > 0 ? rows[t].p99 : null]),
        ),
      }),
    );
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

function writeReports(report) {
  const md = path.join(RESULTS_DIR, 'latest.md');
  const chart = path.join(RESULTS_DIR, 'latest.svg');
  writeFileSync(md, markdown(report));
  writeFileSync(chart, svg(report));
  console.log(`wrote ${rel(md)}, ${rel(chart)}`);
}

// ------------------------------------------------------------------ main

async function main() {
  const options = parseOptions();
  if (options.from) {
    const report = JSON.parse(readFileSync(options.from, 'utf8'));
    writeReports(report);
    return 0;
  }
  const harness = path.resolve(ROOT, process.env.BENCH_HARNESS ?? '../shared/bench/run.sh');
  if (!existsSync(harness)) {
    console.error(`bench: no harness at ${harness} (set BENCH_HARNESS)`);
    return 2;
  }

  await waitForQuietMachine();
  build();
  const machine = machineInfo();
  const tmp = tempDir('myapi-bench-');
  const jsonFile = path.join(tmp, 'harness.json');
  const logsDir = path.join(tmp, 'logs');

  const serve = `exec bin/myapi serve${options.workers ? ` --workers ${options.workers}` : ''}`;
  const myapiCommand = `bin/myapi migrate && MYAPI_PORT=$PORT MYAPI_PASSWORDS__UPGRADE_LEGACY=false ${serve}`;
  const args = [
    '--rounds',
    String(options.rounds),
    '--duration',
    String(options.duration),
    '--connections',
    String(options.connections),
    '--movies',
    String(options.movies),
    '--json',
    jsonFile,
    '--logs',
    logsDir,
    `myapi=cmd:${myapiCommand}`,
    'raw-node',
    'fastapi',
  ];
  console.error(
    `== ${harness} ${args.map((a) => (/[^\w./=:-]/.test(a) ? `'${a}'` : a)).join(' ')}`,
  );
  const status = await runHarness(harness, args, path.join(tmp, 'harness-output.txt'));

  if (!existsSync(jsonFile)) {
    console.error(`bench: the harness exited with ${status} and wrote no results (logs: ${tmp})`);
    return status || 1;
  }
  const harnessJson = JSON.parse(readFileSync(jsonFile, 'utf8'));
  const serverLogs = existsSync(logsDir)
    ? readdirSync(logsDir).filter((f) => /^server-myapi-r\d+\.log$/.test(f))
    : [];
  const logSummary = { counts: {}, statuses: {}, problems: [], files: serverLogs };
  for (const file of serverLogs) {
    const s = summarizeLog(path.join(logsDir, file));
    for (const [k, v] of Object.entries(s.counts))
      logSummary.counts[k] = (logSummary.counts[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.statuses))
      logSummary.statuses[k] = (logSummary.statuses[k] ?? 0) + v;
    logSummary.problems.push(...s.problems.slice(0, 5 - logSummary.problems.length));
  }
  for (const k of ['warn', 'error', 'fatal']) logSummary.counts[k] ??= 0;

  const report = {
    ...machine,
    options,
    harness: {
      path: harness,
      exit_code: status,
      myapi_command: myapiCommand,
      logs: logsDir,
    },
    ...harnessJson,
    myapi_ratios: ratiosOf(harnessJson.summary),
    myapi_server_logs: logSummary,
  };
  const jsonOut = path.join(RESULTS_DIR, `${options.label}.json`);
  writeJson(jsonOut, report);
  console.log(`\nwrote ${rel(jsonOut)}`);
  writeReports(report);
  console.log(`harness logs kept in ${logsDir}`);
  if (status !== 0) console.error(`bench: the harness exited with ${status}`);
  return status;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`bench: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
    process.exit(1);
  },
);
