// The process's JSON logger: batched stdout, one access line per request, no secret in any line.
import { writeSync } from 'node:fs';
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type DestinationStream, type LogFn, type Logger } from 'pino';
import type { LogLevel } from './config.js';
import { serializeError, serializeMessage, safeErrorMessage, redactUrl } from './log_redaction.js';

/**
 * Paths whose values never reach a log line: credentials in headers and bodies, issued tokens.
 * Explicit paths only: a wildcard (`*.password`) makes pino's redaction measurably slower
 * (docs/development.md), and this is paid on every access-log line.
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

/** How long a line may wait for others to share its write, and how much may wait at most. */
const FLUSH_AFTER_MS = 10;
const FLUSH_AT_CHARS = 32 * 1024;

/**
 * Stdout that gathers lines for up to 10 ms (or 32 KiB) and writes them in one synchronous
 * write. A write per line, or even per event-loop turn, costs a syscall every request or two
 * under load (~2 us each here); pino's asynchronous mode hands each write to a libuv thread (a
 * thread wake-up per request), and its sync flush adds an fsync. Pending lines are written at
 * exit, so only a killed process (SIGKILL, out of memory) can lose its last 10 ms of lines.
 */
export function batchedWriter(fd: number): DestinationStream {
  let pending: string[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const lines = pending;
    pending = [];
    size = 0;
    if (lines.length > 0) writeFully(fd, lines.join(''));
  };
  process.on('exit', flush);
  return {
    write(line: string) {
      pending.push(line);
      size += line.length;
      if (size >= FLUSH_AT_CHARS) flush();
      else timer ??= setTimeout(flush, FLUSH_AFTER_MS).unref();
    },
  };
}

/** The error a log call carries, as pino finds it: the first argument, or its `err`. */
function loggedError(first: unknown): Error | undefined {
  if (first instanceof Error) return first;
  if (typeof first === 'object' && first !== null) {
    const err = (first as { err?: unknown }).err;
    if (err instanceof Error) return err;
  }
  return undefined;
}

/**
 * Without a message of its own, pino makes a logged error's message the line's `msg`, unserialized;
 * Fastify passes `err.message` itself. Either way the message of a failed statement would carry
 * its parameters: the line gets the parameter-free message instead.
 */
function logMethod(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  // Lines without an error (every access line) go straight through, without copying the arguments.
  const error = loggedError(args[0]);
  if (error !== undefined && (args[1] === undefined || args[1] === error.message)) {
    const [first, , ...rest] = args as unknown[];
    method.apply(this, [first, safeErrorMessage(error), ...rest] as Parameters<LogFn>);
    return;
  }
  method.apply(this, args);
}

/** The one JSON logger of a process: Fastify logs through it, with a request id on every line. */
export function createLogger(level: LogLevel, stream?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    // By key, wherever a line carries one: errors and causes without SQL parameters or pg's
    // `detail` (which quotes row values), URLs without the values of credential parameters.
    serializers: { err: serializeError, cause: serializeMessage, url: redactUrl },
    hooks: { logMethod },
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
