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

/** The one JSON logger of a process: Fastify logs through it, with a request id on every line. */
export function createLogger(level: LogLevel, stream?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
  };
  return stream === undefined ? pino(options) : pino(options, stream);
}
