// HTTP load from Node itself (node:http, one keep-alive socket per connection, like wrk) that
// records what a fault does to clients: every status, every connection error by code, the
// slowest error answer and a timeline to measure recovery from. Bounded in count and time.
import http from 'node:http';
import { sleep } from '../../lib/common.mjs';

/**
 * One request: { method, path, headers?, body? } to 127.0.0.1:port over `agent`.
 * Resolves { status, headers, body, ms } or { error: code, ms }; never rejects.
 */
export function request(
  port,
  { method = 'GET', path, headers = {}, body },
  { agent, timeoutMs = 10_000 } = {},
) {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (result) => {
      if (settled) return;
      settled = true;
      resolve({ ...result, ms: performance.now() - started, at: started });
    };
    const payload = body === undefined ? undefined : Buffer.from(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: payload ? { 'content-length': payload.length, ...headers } : headers,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          done({
            status: res.statusCode,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', (e) => done({ error: e.code ?? e.message }));
        res.on('aborted', () => done({ error: 'ECONNRESET' }));
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' }));
    });
    req.on('error', (e) => done({ error: e.code ?? e.message }));
    req.end(payload);
  });
}

/** Errors that mean an open connection was cut under a request (as opposed to refused). */
export const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'socket hang up']);

/**
 * Runs `connections` loops, each on its own keep-alive socket, until stop() or `seconds` or
 * `maxRequests` in total. next(i) returns the request to send; onResult(req, res) sees each.
 * Returns { done: Promise<stats>, stop(), stats, t0 }.
 */
export function startLoad({
  port,
  connections,
  seconds,
  next,
  onResult,
  maxRequests = 5_000_000,
  timeoutMs = 15_000,
}) {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const stats = newStats(t0);
  let stopped = false;
  let sent = 0;
  const loop = async (worker) => {
    let agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    while (!stopped && performance.now() < deadline && sent < maxRequests) {
      const req = next(sent++, worker);
      const res = await request(port, req, { agent, timeoutMs });
      record(stats, req, res);
      onResult?.(req, res);
      if (res.error) {
        // A new socket next time, and no hot loop while the server is away.
        agent.destroy();
        agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        await sleep(res.error === 'ECONNREFUSED' ? 20 : 5);
      }
    }
    agent.destroy();
  };
  const done = Promise.all(Array.from({ length: connections }, (_, i) => loop(i))).then(() => {
    stats.seconds = (performance.now() - t0) / 1000;
    return stats;
  });
  return { done, stats, t0, stop: () => (stopped = true) };
}

export function newStats(t0) {
  return {
    t0,
    total: 0,
    statuses: {},
    errors: {},
    resets: 0,
    refused: 0,
    timeouts: 0,
    slowest_error_ms: 0,
    slowest_ok_ms: 0,
    // Latencies of the error answers (capped), for their median.
    error_ms: [],
    server_errors_without_retry_after: 0,
    bad_5xx: 0,
    // The first few 5xx answers that break the promise (not a 503 with Retry-After), to see why.
    bad_samples: [],
    // [ms since t0 at the answer, status or error code]
    timeline: [],
  };
}

export function record(stats, req, res) {
  stats.total++;
  const end = res.at + res.ms - stats.t0;
  if (res.error) {
    stats.errors[res.error] = (stats.errors[res.error] ?? 0) + 1;
    if (RESET_CODES.has(res.error)) stats.resets++;
    if (res.error === 'ECONNREFUSED') stats.refused++;
    if (res.error === 'TIMEOUT') stats.timeouts++;
    stats.timeline.push([end, res.error]);
    return;
  }
  stats.statuses[res.status] = (stats.statuses[res.status] ?? 0) + 1;
  if (res.status >= 400) {
    stats.slowest_error_ms = Math.max(stats.slowest_error_ms, res.ms);
    if (stats.error_ms.length < 100_000) stats.error_ms.push(res.ms);
  } else stats.slowest_ok_ms = Math.max(stats.slowest_ok_ms, res.ms);
  if (res.status >= 500) {
    const bad = res.status !== 503 || res.headers['retry-after'] === undefined;
    if (res.status !== 503) stats.bad_5xx++;
    else if (bad) stats.server_errors_without_retry_after++;
    if (bad && stats.bad_samples.length < 3) {
      const { connection, 'retry-after': retryAfter, 'content-type': type } = res.headers;
      stats.bad_samples.push({
        request: `${req.method ?? 'GET'} ${req.path.slice(0, 80)}`,
        status: res.status,
        headers: { connection, 'retry-after': retryAfter, 'content-type': type },
        body: res.body.slice(0, 200),
      });
    }
  }
  if (res.status !== 200 || stats.timeline.length < 200_000) stats.timeline.push([end, res.status]);
}

/**
 * Recovery after `backAt` (ms since t0, when the database answered again): the first 2xx after
 * it, and the last answer that was not 2xx (an error or a connection failure) after it.
 */
export function recovery(stats, backAt) {
  let firstOk = null;
  let lastBad = null;
  for (const [t, what] of stats.timeline) {
    if (t < backAt) continue;
    const ok = typeof what === 'number' && what < 400;
    if (ok && firstOk === null) firstOk = t - backAt;
    if (!ok && (typeof what !== 'number' || what >= 500)) lastBad = t - backAt;
  }
  return { first_ok_after_ms: firstOk, last_error_after_ms: lastBad };
}

/** The figures worth printing, without the timeline. */
export function summary(stats) {
  const { timeline, t0, error_ms: errorMs, ...rest } = stats;
  void timeline;
  void t0;
  const sorted = [...errorMs].sort((a, b) => a - b);
  return {
    ...rest,
    median_error_ms: sorted.length ? Math.round(sorted[Math.floor(sorted.length / 2)]) : null,
    slowest_error_ms: Math.round(rest.slowest_error_ms),
    slowest_ok_ms: Math.round(rest.slowest_ok_ms),
  };
}
