// Helpers shared by bench/run.mjs, bench/login-storm.mjs and bench/footprint.mjs.
// Plain Node (child_process, fs, fetch) plus the project's own `pg` dependency for the
// admin connection that creates and drops the throwaway databases.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(BENCH_DIR, '..');
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');
export const LUA_DIR = path.join(BENCH_DIR, 'lua');
export const CLI = path.join(ROOT, 'dist', 'cli.js');

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ cleanup on exit / signals

const cleanups = [];
const children = new Set();

/** Registers an async cleanup step; steps run last-registered first, once. */
export function onCleanup(fn) {
  cleanups.push(fn);
}

let cleaning = null;
export function cleanup() {
  cleaning ??= (async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
    while (cleanups.length > 0) {
      const fn = cleanups.pop();
      try {
        await fn();
      } catch (error) {
        console.error(`cleanup: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  })();
  return cleaning;
}

/** Ctrl-C / SIGTERM: stop what this script started, then exit 130 / 143. */
export function exitCleanlyOnSignals() {
  const handler = (signal) => {
    console.error(`\n${signal}: stopping what this script started`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

/** Runs main(), always cleans up, exits with main's status (or 1 on an error). */
export function runMain(main) {
  exitCleanlyOnSignals();
  main().then(
    async (code) => {
      await cleanup();
      process.exit(code ?? 0);
    },
    async (error) => {
      console.error(`error: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
      await cleanup();
      process.exit(1);
    },
  );
}

// ------------------------------------------------------------------ processes

/** Runs a command to completion (output inherited unless quiet); throws when it fails. */
export function run(cmd, args, { env, quiet = false, cwd = ROOT, input } = {}) {
  const result = spawnSync(cmd, args, {
    cwd,
    env: env ?? process.env,
    input,
    encoding: 'utf8',
    stdio: quiet ? ['pipe', 'pipe', 'pipe'] : ['pipe', 'inherit', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    const output = quiet ? `\n${result.stdout ?? ''}${result.stderr ?? ''}`.trimEnd() : '';
    throw new Error(`${cmd} ${args.join(' ')} exited with ${result.status}${output}`);
  }
  return result.stdout ?? '';
}

/** Output of a command, trimmed, or '' when it cannot run. */
export function capture(cmd, args) {
  const result = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : '';
}

export function build() {
  console.error('== npm run build');
  run('npm', ['run', 'build', '--silent']);
}

/** `myapi <args>` through node dist/cli.js, output captured; throws on failure. */
export function myapi(args, env) {
  return run(process.execPath, [CLI, ...args], { env, quiet: true }).trim();
}

/** Spawns a child that is stopped by cleanup() if still running. */
export function spawnTracked(cmd, args, options) {
  const child = spawn(cmd, args, options);
  children.add(child);
  child.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (error) => {
      children.delete(child);
      resolve({ code: null, signal: null, error });
    });
  });
  return child;
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process has exited. */
export async function stopProcess(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exited;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const result = await child.exited;
  clearTimeout(timer);
  return result;
}

export function requireCommand(cmd, hint) {
  const result = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${cmd} not found: ${hint}`);
}

/** Other benchmarks running on the machine: wrk processes and the shared harness. */
function otherBenchmarks() {
  const found = [];
  for (const args of [
    ['-a', '-x', 'wrk'],
    ['-a', '-f', 'bench/run\\.sh'],
  ]) {
    const result = spawnSync('pgrep', args, { encoding: 'utf8' });
    if (result.status === 0) found.push(...result.stdout.trim().split('\n'));
  }
  return found.filter((line) => !line.startsWith(`${process.pid} `));
}

/**
 * Waits while another benchmark runs on the machine (they would disturb each other): polls
 * every 5 s until two polls in a row see none (gaps between someone's wrk runs are short),
 * for at most maxWaitMs; then goes on with a warning.
 */
export async function waitForQuietMachine(maxWaitMs = 20 * 60_000) {
  const deadline = Date.now() + maxWaitMs;
  let others = otherBenchmarks();
  if (others.length === 0) return;
  console.error('== another benchmark is running; waiting for it to end:');
  console.error(others.map((l) => `   ${l.slice(0, 160)}`).join('\n'));
  let quiet = 0;
  while (quiet < 2 && Date.now() < deadline) {
    await sleep(5000);
    others = otherBenchmarks();
    quiet = others.length === 0 ? quiet + 1 : 0;
  }
  if (quiet < 2) {
    console.error(
      `warning: still running after ${maxWaitMs / 60_000} min; results will be disturbed`,
    );
  }
}

// ------------------------------------------------------------------ machine and run info

export function machineInfo() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? '?';
  const commit = capture('git', ['rev-parse', 'HEAD']);
  const dirty = capture('git', ['status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    date: new Date().toISOString(),
    nproc: Number(capture('nproc', [])) || os.availableParallelism(),
    kernel: capture('uname', ['-r']) || os.release(),
    node: process.version,
    cpu,
    commit: commit || null,
    uncommitted_changes: commit ? dirty : null,
  };
}

export function machineLine(m) {
  const commit = m.commit
    ? `commit ${m.commit.slice(0, 10)}${m.uncommitted_changes ? ' (with uncommitted changes)' : ''}`
    : 'no git commit';
  return `${m.nproc} CPUs (${m.cpu}), Linux ${m.kernel}, Node ${m.node}, ${commit}`;
}

/** 2025-01-31 14:05 (local time). */
export function localStamp(date = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ${p(date.getHours())}:${p(date.getMinutes())}`;
}

/**
 * JSON.stringify(data, null, 2), except that arrays of plain values stay on one line when they
 * fit in 100 columns: the layout Prettier gives JSON, so `prettier --check bench` passes.
 */
export function toJson(data) {
  const WIDTH = 100;
  const walk = (value, indent, prefixLength) => {
    if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
    const inner = `${indent}  `;
    if (Array.isArray(value)) {
      if (value.length === 0) return '[]';
      const plain = value.every((v) => v === null || typeof v !== 'object');
      if (plain) {
        const flat = `[${value.map((v) => JSON.stringify(v) ?? 'null').join(', ')}]`;
        if (prefixLength + flat.length + 1 <= WIDTH) return flat;
      }
      const items = value.map((v) => inner + walk(v, inner, inner.length));
      return `[\n${items.join(',\n')}\n${indent}]`;
    }
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const items = entries.map(([k, v]) => {
      const head = `${inner}${JSON.stringify(k)}: `;
      return head + walk(v, inner, head.length);
    });
    return `{\n${items.join(',\n')}\n${indent}}`;
  };
  return walk(JSON.parse(JSON.stringify(data)), '', 0) + '\n';
}

export function writeJson(file, data) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, toJson(data));
}

export function rel(file) {
  return path.relative(process.cwd(), file) || '.';
}

// ------------------------------------------------------------------ command line

/**
 * The tool's options (parseArgs, strict; -h/--help prints `usage` and exits 0; an unknown option
 * exits 2 with `usage`), with `int` to read one as a whole number within [min, max]: anything
 * else exits 2 with `usage`, and an option without a default that was not given is undefined.
 */
export function commandLine(tool, usage, options) {
  let values;
  try {
    ({ values } = parseArgs({
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    console.error(`${tool}: ${error instanceof Error ? error.message : error}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const int = (key, min, max = Infinity) => {
    const v = values[key];
    if (v === undefined) return undefined;
    if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) {
      const range = max === Infinity ? `>= ${min}` : `from ${min} to ${max}`;
      console.error(`${tool}: --${key} must be a whole number ${range}\n${usage}`);
      process.exit(2);
    }
    return Number(v);
  };
  /**
   * `--set MYAPI_NAME=VALUE` (repeatable) as an object of server settings: the tools start the
   * server without the caller's MYAPI_* variables, so this is the only way to try one. OTEL_*
   * variables (tracing) are taken too, so one run can compare tracing on with off.
   */
  const settings = (key = 'set') => {
    const result = {};
    for (const pair of values[key] ?? []) {
      const match = /^((?:MYAPI|OTEL)_[A-Z0-9_]+)=(.*)$/s.exec(pair);
      if (match === null) {
        console.error(
          `${tool}: --${key} takes MYAPI_NAME=VALUE (or OTEL_NAME=VALUE), not ${JSON.stringify(pair)}\n${usage}`,
        );
        process.exit(2);
      }
      result[match[1]] = match[2];
    }
    return result;
  };
  return { values, int, settings };
}

// ------------------------------------------------------------------ PostgreSQL

export const ADMIN_DSN =
  process.env.BENCH_PG_DSN ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/** The admin DSN with another database name. */
export function dsnFor(database) {
  const url = new URL(ADMIN_DSN);
  url.pathname = `/${database}`;
  return url.toString();
}

async function admin(sql) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: ADMIN_DSN, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `cannot reach PostgreSQL at ${ADMIN_DSN} (set BENCH_PG_DSN): ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  }
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const ident = (name) => `"${name.replaceAll('"', '""')}"`;

/** Drops (if it exists) and creates a database; registers its drop for the end. */
export async function freshDatabase(name) {
  await admin(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${ident(name)}`);
  onCleanup(() => dropDatabase(name));
  return dsnFor(name);
}

export async function dropDatabase(name) {
  await admin(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
}

export function tokenKey() {
  return randomBytes(48).toString('base64url');
}

// ------------------------------------------------------------------ the server

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(address.port));
    });
  });
}

/**
 * Spawns `node [nodeArgs] dist/cli.js serve --port P` directly (child.pid is the server
 * itself, not a wrapper), its stdout and stderr appended to logFile.
 */
export async function startServer({ env, logFile, nodeArgs = [], ipc = false }) {
  const port = await freePort();
  const fd = openSync(logFile, 'a');
  const spawnedAt = performance.now();
  const child = spawnTracked(
    process.execPath,
    [...nodeArgs, CLI, 'serve', '--host', '127.0.0.1', '--port', String(port)],
    { cwd: ROOT, env, stdio: ['ignore', fd, fd, ...(ipc ? ['ipc'] : [])] },
  );
  closeSync(fd);
  child.spawnedAt = spawnedAt;
  child.port = port;
  child.baseUrl = `http://127.0.0.1:${port}`;
  return child;
}

/** Polls GET /ready until a 200; returns the time since `since` in ms. Bounded by timeoutMs. */
export async function waitReady(child, since, { timeoutMs = 60_000, intervalMs = 10 } = {}) {
  const deadline = since + timeoutMs;
  let last = 'no answer';
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the server exited (${child.exitCode ?? child.signalCode}) before /ready`);
    }
    try {
      const response = await fetch(`${child.baseUrl}/ready`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) return performance.now() - since;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? (error.cause?.code ?? error.message) : String(error);
    }
    await sleep(intervalMs);
  }
  throw new Error(`the server was not ready after ${timeoutMs} ms (last: ${last})`);
}

export async function getToken(baseUrl, email, password, timeoutMs = 30_000) {
  const response = await fetch(`${baseUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: email, password }).toString(),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`POST /token: HTTP ${response.status} ${body}`);
  return JSON.parse(body).access_token;
}

/** VmRSS and VmHWM of a process in MiB (null when it is gone). */
export function memoryOf(pid) {
  let status;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss_mb: kb('VmRSS') / 1024, hwm_mb: kb('VmHWM') / 1024 };
}

/**
 * The lines of a file, read 1 MiB at a time: a soak's server log outgrows the largest string
 * Node can make (512 MiB) on a fast machine.
 */
function* fileLines(file) {
  const fd = openSync(file, 'r');
  const decoder = new StringDecoder('utf8');
  const chunk = Buffer.alloc(1 << 20);
  let rest = '';
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) {
      const lines = (rest + decoder.write(chunk.subarray(0, n))).split('\n');
      rest = lines.pop() ?? '';
      yield* lines;
    }
    rest += decoder.end();
    if (rest !== '') yield rest;
  } finally {
    closeSync(fd);
  }
}

/**
 * Counts a pino JSON log's lines by level and the response statuses it reports; keeps the
 * first few warnings and errors, and the first few lines that are not JSON (stderr output).
 */
export function summarizeLog(file, keep = 5) {
  const names = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
  const counts = { trace: 0, debug: 0, info: 0, warn: 0, error: 0, fatal: 0, other_lines: 0 };
  const problems = [];
  const other = [];
  const statuses = {};
  if (!existsSync(file)) return { counts, statuses, problems, other };
  for (const line of fileLines(file)) {
    if (!line.trim()) continue;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      counts.other_lines++;
      if (other.length < keep) other.push(line.slice(0, 300));
      continue;
    }
    const level = names[entry.level] ?? 'info';
    counts[level]++;
    // Fastify's own "request completed" has res.statusCode; myapi's may carry status.
    const status =
      entry.msg === 'request completed' ? (entry.res?.statusCode ?? entry.status) : undefined;
    if (status !== undefined) statuses[status] = (statuses[status] ?? 0) + 1;
    if (entry.level >= 40 && problems.length < keep) {
      const err = entry.err ? ` (${entry.err.type ?? ''}: ${entry.err.message ?? ''})` : '';
      problems.push(`${level}: ${entry.msg ?? ''}${err}`.slice(0, 300));
    }
  }
  return { counts, statuses, problems, other };
}

// ------------------------------------------------------------------ wrk

/** Parses wrk's "RESULT k=v ..." line (from bench/lua/common.lua) into numbers. */
export function parseResult(output) {
  const line = output.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) return null;
  const result = {};
  for (const pair of line.slice(7).trim().split(/\s+/)) {
    const [key, value] = pair.split('=');
    result[key] = Number(value);
  }
  result.socket_errors = result.connect + result.read + result.write + result.timeout;
  return result;
}

/**
 * Runs wrk -t1 with one of bench/lua's scripts; resolves with the parsed RESULT line.
 * Killed if it runs 30 s past its duration.
 */
export async function runWrk({ url, script, duration, connections, token, args = [], logFile }) {
  const wrkArgs = ['-t1', `-c${connections}`, `-d${duration}s`, '--timeout', '10s'];
  if (token) wrkArgs.push('-H', `Authorization: Bearer ${token}`);
  wrkArgs.push('-s', path.join(LUA_DIR, script), url, '--', ...args.map(String));
  const child = spawnTracked('wrk', wrkArgs, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const guard = setTimeout(() => child.kill('SIGKILL'), (duration + 30) * 1000);
  const { code, signal } = await child.exited;
  clearTimeout(guard);
  if (logFile) writeFileSync(logFile, output);
  const result = parseResult(output);
  if (code !== 0 || !result) {
    throw new Error(`wrk exited with ${code ?? signal}:\n${output.trim()}`);
  }
  return result;
}

// ------------------------------------------------------------------ formatting

export function fmt(x, digits) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  if (digits === undefined) digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  return x.toFixed(digits);
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** A plain-text table; columns listed in `right` are right-aligned. */
export function textTable(header, rows, right = []) {
  const cells = [header, ...rows].map((r) => r.map(String));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) =>
    r
      .map((c, i) => (right.includes(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)]
    .join('\n')
    .concat('\n');
}

/** A Markdown table laid out the way Prettier writes it (so `prettier --check` passes). */
export function markdownTable(header, rows, right = []) {
  const esc = (c) => String(c).replaceAll('|', '\\|');
  const cells = [header, ...rows].map((r) => r.map(esc));
  const widths = header.map((_, i) => Math.max(3, ...cells.map((r) => r[i].length)));
  const line = (r) =>
    `| ${r.map((c, i) => (right.includes(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (right.includes(i) ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ')} |`;
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n') + '\n';
}

// ------------------------------------------------------------------ SVG

export function xmlEscape(s) {
  return String(s)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

/** Round tick values from 0 to at least max (about `count` of them). */
export function niceTicks(max, count = 5) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Short numbers for axes and bar labels: 0.5, 12.5, 950, 1.2k, 11.4k, 150k. */
export function shortNumber(v) {
  if (!Number.isFinite(v)) return '-';
  const trim = (s) => (s.includes('.') ? s.replace(/\.?0+$/, '') : s);
  if (Math.abs(v) >= 100_000) return `${fmt(v / 1000, 0)}k`;
  if (Math.abs(v) >= 1000) return `${trim(fmt(v / 1000, 1))}k`;
  if (Math.abs(v) >= 100) return fmt(v, 0);
  return trim(fmt(v, Math.abs(v) >= 10 ? 1 : 2));
}

export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

/** A new directory under the OS temp dir (outside the project tree). */
/** The process environment without MYAPI_* settings, plus the given ones. */
export function serverEnv(settings) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.toUpperCase().startsWith('MYAPI_')),
  );
  return { ...env, ...settings };
}

export function tempDir(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}
