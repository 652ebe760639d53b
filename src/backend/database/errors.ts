// Which driver errors mean "the database is unavailable" (a 503, one CLI line), and SQLSTATEs.

/** The database cannot be reached: a 503 for HTTP clients, one line for the CLI. */
export class DatabaseUnavailableError extends Error {
  constructor(label: string, cause: unknown) {
    super(`cannot reach the database ${label}: ${describeCause(cause)}`, { cause });
    this.name = 'DatabaseUnavailableError';
  }
}

function rootCause(error: unknown): unknown {
  let inner = error;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  return inner;
}

/**
 * The driver's own reason, on one line. Drizzle wraps driver errors as "Failed query: <sql>
 * params: ..." with the reason on `cause`; the innermost error is the one that says why.
 */
function describeCause(cause: unknown): string {
  const error = rootCause(cause);
  if (error instanceof AggregateError && error.errors.length > 0) {
    return describeCause(error.errors[0]);
  }
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  const message = error.message.replace(/\s+/g, ' ').trim();
  return code !== undefined && !message.includes(code) ? `${message} (${code})` : message;
}

/**
 * SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown, crash),
 * and the server-side limits that free a stuck pool: 57014 (statement_timeout), 55P03
 * (lock_timeout) and 25P03 (idle_in_transaction_session_timeout). Each says "try again later",
 * not "this request is wrong".
 */
const UNAVAILABLE_SQLSTATE = /^(08|57P|57014$|55P03$|25P03$)/;
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
]);
/** pg and pg-pool say these in words only; the pool's wait for a connection is the second. */
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Client was closed|not queryable|Cannot use a pool after calling end|PGlite is closed/i;

/** True when an error (or its cause, as Drizzle wraps driver errors) means the database is gone. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof DatabaseUnavailableError) return true;
    const code = (e as { code?: unknown }).code;
    if (
      typeof code === 'string' &&
      (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))
    )
      return true;
    if (UNAVAILABLE_MESSAGE.test(e.message)) return true;
  }
  return false;
}

/**
 * One line for an operator when an error means the database is unavailable (a command's
 * connection lost midway comes wrapped by Drizzle in a multi-line "Failed query"), else undefined.
 */
export function describeUnavailable(error: unknown): string | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof DatabaseUnavailableError) return e.message;
  }
  return isDatabaseUnavailable(error) ? `lost the database: ${describeCause(error)}` : undefined;
}

/** The SQLSTATE of a driver error, which Drizzle puts on `cause`. */
export function sqlState(error: unknown): string | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}
