import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

/** Paths whose values never reach a log line: credentials in headers and bodies, issued tokens. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'password',
  'access_token',
  'client_secret',
  'token_key',
  '*.password',
  '*.access_token',
  '*.client_secret',
  '*.token_key',
];

/**
 * The one JSON logger of a process: Fastify logs through it, with a request id on every line.
 * Stdout is written asynchronously (a synchronous write per line costs a syscall per request);
 * what is buffered is flushed when the process exits.
 */
export function createLogger(level: LogLevel, stream?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
  };
  if (stream !== undefined) return pino(options, stream);
  const stdout = pino.destination({ dest: 1, sync: false });
  process.on('exit', () => {
    stdout.flushSync();
  });
  return pino(options, stdout);
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
