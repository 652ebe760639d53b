// Every error, from a service, Fastify or Node's HTTP parser, answered as an RFC 9457 problem
// (sent as the media type an AppError names: application/json for OAuth2's token errors).
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type {
  ConnectionError,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
} from 'fastify';
import { isDatabaseUnavailable } from '../backend/database.js';
import {
  AppError,
  PROBLEM_CONTENT_TYPE,
  rootCause,
  ServiceUnavailableError,
  type FieldError,
} from '../exc.js';
import { sharedProblemResponses } from '../schemas/problem.js';

function titleFor(status: number): string {
  return STATUS_CODES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error');
}

/** A problem document's body: `detail` is always a string, as FastAPI clients expect. */
function problem(status: number, detail: string, extra: Record<string, unknown> = {}) {
  return { type: 'about:blank', title: titleFor(status), status, detail, ...extra };
}

/** The first stack frame of our own code: where the error was raised, as the tutorial logs it. */
function raisedAt(error: Error): string | undefined {
  const frame = error.stack
    ?.split('\n')
    .slice(1)
    .find((line) => !line.includes('node_modules') && !line.includes('node:'));
  return frame?.trim().replace(/^at /, '');
}

/** The innermost cause's message, on one line: what actually went wrong underneath. */
function causeOf(error: Error): string | undefined {
  const inner = rootCause(error);
  return inner === error || !(inner instanceof Error)
    ? undefined
    : inner.message.replace(/\s+/g, ' ').trim();
}

function validationErrors(error: FastifyError): FieldError[] {
  return (error.validation ?? []).map((issue) => {
    const path = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
    const params = issue.params as { missingProperty?: unknown; additionalProperty?: unknown };
    // Name the field that is missing, or the unknown one that was sent (a typo, usually).
    const named = params.missingProperty ?? params.additionalProperty;
    const field = [error.validationContext, path, typeof named === 'string' ? named : '']
      .filter((part) => part !== undefined && part !== '')
      .join('.');
    return { field, message: issue.message ?? 'is invalid' };
  });
}

function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error && 'code' in error;
}

/** What Fastify's own client errors say, in words that do not echo the request back. */
const FASTIFY_DETAILS: Record<string, string> = {
  FST_ERR_MAX_PARAM_LENGTH: 'A path parameter is too long',
  FST_ERR_BAD_URL: 'The URL is malformed (bad percent-encoding)',
};

/** Turns any error into a problem document and logs it exactly once, with its cause. */
export function errorHandler(thrown: unknown, request: FastifyRequest, reply: FastifyReply): void {
  // A lost database is the server's state, not a bug: 503 and a hint to retry.
  const error = isDatabaseUnavailable(thrown)
    ? new ServiceUnavailableError('Database unavailable', thrown)
    : thrown;
  let status = 500;
  let detail = 'Internal server error';
  let headers: Record<string, string> = {};
  let extra: Record<string, unknown> = {};
  let contentType = PROBLEM_CONTENT_TYPE;

  if (error instanceof AppError) {
    ({ status, headers, extra, contentType } = error);
    detail = error.message;
  } else if (isFastifyError(error) && error.validation) {
    status = 422;
    const errors = validationErrors(error);
    detail = `Invalid request: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}`;
    extra = { errors };
  } else if (
    isFastifyError(error) &&
    typeof error.statusCode === 'number' &&
    error.statusCode >= 400 &&
    error.statusCode < 500
  ) {
    // Fastify's own client errors (bad JSON, unsupported media type, body too large) are safe to show.
    status = error.statusCode;
    detail = FASTIFY_DETAILS[error.code] ?? error.message;
  }

  const where = error instanceof Error ? raisedAt(error) : undefined;
  const cause = error instanceof Error ? causeOf(error) : undefined;
  if (error instanceof AppError && error.alert !== undefined) {
    request.log.warn({ status, detail, ...error.alert.fields }, error.alert.message);
  } else if (!(error instanceof AppError) && status >= 500) {
    // A bug: the whole error with its stack, once.
    request.log.error({ err: error }, 'request failed');
  } else if (status >= 500) {
    // An expected condition (database down, overload): one line, no stack, and it can be
    // thousands a second under the very load it protects against.
    request.log.warn({ status, detail, cause }, 'request refused');
  } else {
    request.log.info({ status, detail, where, cause }, 'request rejected');
  }

  void reply
    .code(status)
    .headers(headers)
    .type(contentType)
    .send(problem(status, detail, extra));
}

/** Unknown routes answer with the same problem shape as every other error. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0] ?? '';
  void reply
    .code(404)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problem(404, `Route ${request.method} ${path} not found`));
}

/** What Node's HTTP parser refused, by its error code. */
function parserProblem(code: string | undefined): { status: number; detail: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, detail: 'The request line and headers are too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, detail: 'The request was not received in time' };
    default:
      return { status: 400, detail: 'The request is not valid HTTP' };
  }
}

/**
 * Fastify's clientErrorHandler: Node's HTTP parser refused the request (headers too large,
 * malformed, too slow), so no route runs and the connection cannot go on. The answer is still a
 * problem document, and it says `Connection: close`, so a keep-alive client opens a new
 * connection for its next request instead of sending it into a closed one.
 */
export function clientErrorHandler(
  this: FastifyInstance,
  error: ConnectionError,
  socket: Socket,
): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, detail } = parserProblem(error.code);
  this.log.info({ status, detail, code: error.code }, 'request rejected by the HTTP parser');
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(problem(status, detail));
  socket.end(
    `HTTP/1.1 ${status} ${titleFor(status)}\r\nConnection: close\r\n` +
      `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  // A client that never closes its side must not hold the socket open.
  setTimeout(() => socket.destroy(), 5_000).unref();
}

interface RouteSchema {
  hide?: boolean;
  querystring?: unknown;
  response?: Record<string | number, unknown>;
}

/**
 * An onRoute hook, so the contract holds for every operation without each route saying it: the
 * shared error responses are documented (a route's own description of a status wins), and a
 * route that declares no query parameters refuses any (422), like the routes that declare some.
 */
export function documentSharedErrors(route: { method: string | string[]; schema?: unknown }): void {
  const schema = route.schema as RouteSchema | undefined;
  if (schema === undefined || schema.hide === true) return;
  const method = Array.isArray(route.method) ? (route.method[0] ?? 'GET') : route.method;
  schema.response = { ...sharedProblemResponses(method), ...schema.response };
  schema.querystring ??= { type: 'object', properties: {}, additionalProperties: false };
}
