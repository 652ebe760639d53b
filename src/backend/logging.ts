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
