// What log lines may say about errors and URLs: no SQL parameters, row values or credentials.
import { pino } from 'pino';

const CENSOR = '[redacted]';

/** Query parameters whose values are credentials (OAuth 2 tokens and codes, passwords). */
const CREDENTIAL_PARAMETERS = new Set([
  'access_token',
  'refresh_token',
  'token',
  'password',
  'client_secret',
  'code',
]);

/** Every credential name contains one of these; `%` for a name sent percent-encoded. */
const MIGHT_NAME_A_CREDENTIAL = /token|password|secret|code|%/i;

function parameterName(raw: string): string {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' ')).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}

/**
 * A URL as sent, with the value of each credential parameter replaced (`?access_token=[redacted]`),
 * its name matched case-insensitively and percent-decoded as the query parser decodes it.
 */
export function redactUrl(url: unknown): unknown {
  if (typeof url !== 'string') return url;
  const start = url.indexOf('?');
  // Most queries name no credential: one scan, and the URL is logged as it is.
  if (start === -1 || !MIGHT_NAME_A_CREDENTIAL.test(url.slice(start))) return url;
  const query = url
    .slice(start + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals === -1 ? pair : pair.slice(0, equals);
      return CREDENTIAL_PARAMETERS.has(parameterName(name)) ? `${name}=${CENSOR}` : pair;
    });
  return `${url.slice(0, start + 1)}${query.join('&')}`;
}

/** A statement that failed, as Drizzle reports it: its text and its parameters. */
function isQueryError(error: Error): error is Error & { query: string; params: unknown[] } {
  const fields = error as { query?: unknown; params?: unknown };
  return typeof fields.query === 'string' && Array.isArray(fields.params);
}

/**
 * PostgreSQL's error fields (node-postgres and PGlite alike) that name things and never hold a
 * value: the ones a log line may keep. SQLSTATE (`code`) is five characters.
 */
const NAMING_FIELDS = [
  'code',
  'severity',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'routine',
] as const;
type NamingFields = Partial<Record<(typeof NAMING_FIELDS)[number], string>>;

interface ServerError extends Error, NamingFields {
  code: string;
}

function isServerError(error: Error): error is ServerError {
  const fields = error as { code?: unknown; severity?: unknown };
  return (
    typeof fields.code === 'string' &&
    /^[0-9A-Z]{5}$/.test(fields.code) &&
    typeof fields.severity === 'string'
  );
}

/**
 * A message without values: Drizzle's "Failed query: <sql>\nparams: <values>" loses its params,
 * and a server message that quotes the offending input (`invalid input syntax for type
 * integer: "<value>"`) loses the quote. Names in quotes elsewhere (relations, constraints) stay.
 */
export function safeErrorMessage(error: Error): string {
  // PGlite's server errors carry the query and its params too: their message is the server's.
  if (isQueryError(error) && !isServerError(error)) return `Failed query: ${error.query}`;
  return withoutValues(error.message);
}

function withoutValues(message: string): string {
  return message.replace(/\s+params: [\s\S]*$/, '').replace(/: "[\s\S]*"$/, `: ${CENSOR}`);
}

/** The stack with its first line(s), the message, replaced by the safe message. */
function safeStack(error: Error, message: string): string | undefined {
  if (error.stack === undefined) return undefined;
  const frames = error.stack.indexOf('\n    at ');
  return `${error.name}: ${message}${frames === -1 ? '' : error.stack.slice(frames)}`;
}

function chainHasDatabaseError(error: Error): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 10; depth++) {
    if (isQueryError(e) || isServerError(e)) return true;
    e = e.cause;
  }
  return false;
}

interface SafeError extends NamingFields {
  type: string;
  message: string;
  stack?: string;
  cause?: SafeError;
}

/** Only the fields that name things (SQLSTATE, constraint, table), never `detail`, `where` or params. */
function safeError(error: Error, depth = 0): SafeError {
  const message = safeErrorMessage(error);
  const safe: SafeError = { type: error.name, message };
  // As pino's serializer does: the outermost stack goes on with each cause's ("caused by: ").
  if (depth === 0) {
    const stacks: string[] = [];
    for (let e: unknown = error; e instanceof Error && stacks.length < 10; e = e.cause) {
      stacks.push(safeStack(e, safeErrorMessage(e)) ?? `${e.name}: ${safeErrorMessage(e)}`);
    }
    safe.stack = stacks.join('\ncaused by: ');
  }
  if (isServerError(error)) {
    for (const field of NAMING_FIELDS) {
      const value = error[field];
      if (typeof value === 'string') safe[field] = value;
    }
  }
  if (error.cause instanceof Error && depth < 10) safe.cause = safeError(error.cause, depth + 1);
  return safe;
}

/**
 * pino's `err` serializer, except for an error with a database error in its chain: that one is
 * rebuilt from the fields that are safe to log, since pino's copies every field, and node-postgres
 * puts row values in `detail` and Drizzle the statement's parameters in `params` and the message.
 */
export function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  return chainHasDatabaseError(error) ? safeError(error) : pino.stdSerializers.err(error);
}

/** A `cause` logged as a message (or an error): without the values a database error quotes. */
export function serializeMessage(cause: unknown): unknown {
  if (typeof cause === 'string') return withoutValues(cause);
  return serializeError(cause);
}
