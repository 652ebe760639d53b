import { writeSync } from 'node:fs';
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

/**
 * Paths whose values never reach a log line: credentials in headers and bodies, issued tokens.
 * Explicit paths only: a wildcard (`*.password`) makes pino's redaction cost ~2 µs per line,
 * and this is paid on every access-log line.
 */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.body.password',
  'req.body.client_secret',
  'body.password',
  'body.client_secret',
  'password',
  'access_token',
  'refresh_token',
  'client_secret',
  'token_key',
];

/** Writes all of `text` to a file descriptor, waiting out a full non-blocking pipe. */
function writeFully(fd: number, text: string): void {
  let buffer = Buffer.from(text, 'utf8');
  while (buffer.length > 0) {
    try {
      buffer = buffer.subarray(writeSync(fd, buffer));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Nobody reads stdout any more: the lines have nowhere to go.
      if (code === 'EPIPE') return;
      if (code !== 'EAGAIN') throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

/**
 * Stdout that writes each event-loop turn's lines in one synchronous write. A write per line
 * costs a syscall per request; pino's asynchronous mode hands each write to a libuv thread (a
 * thread wake-up per request), and its sync flush adds an fsync. Lines are out before the
 * process next waits for I/O, and at exit.
 */
export function batchedWriter(fd: number): DestinationStream {
  let pending: string[] = [];
  const flush = () => {
    const lines = pending;
    pending = [];
    if (lines.length > 0) writeFully(fd, lines.join(''));
  };
  process.on('exit', flush);
  return {
    write(line: string) {
      if (pending.push(line) === 1) setImmediate(flush);
    },
  };
}

/** The one JSON logger of a process: Fastify logs through it, with a request id on every line. */
export function createLogger(level: LogLevel, stream?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
  };
  return pino(options, stream ?? batchedWriter(1));
}

function requestFields(request: FastifyRequest, reply: FastifyReply) {
  return {
    method: request.method,
    url: request.url,
    status: reply.statusCode,
    ms: Math.round(reply.elapsedTime * 100) / 100,
  };
}

/**
 * One access-log line per request, when it completes (Fastify writes two, "incoming" and
 * "completed", which doubles the log volume under load); the incoming line stays at debug.
 */
export class AccessLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ method: request.method, url: request.url }, 'incoming request');
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (error) reply.log.error({ ...requestFields(request, reply), err: error }, 'request errored');
    else reply.log.info(requestFields(request, reply), 'request completed');
  }
}
