/**
 * The HTTP server span of each request, when tracing is on (backend/tracing.ts): it continues the
 * trace of an incoming W3C traceparent, is named by method and route pattern ("GET /movies/:id"),
 * is the parent of the request's SQL and password-hash spans, and its trace id is on every log
 * line of the request. The response says which trace it joined in a traceresponse header
 * (W3C Trace Context Level 2).
 */
import type { IncomingMessage } from 'node:http';
import type * as otel from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Tracing } from '../backend/tracing.js';

interface RequestTrace {
  span: otel.Span;
  /** The context with the span in it: entered again where Node's callbacks lost it. */
  context: otel.Context;
}

/** Reads the incoming headers for the propagator (traceparent, tracestate, baggage). */
const headerGetter: otel.TextMapGetter<IncomingMessage['headers']> = {
  keys: (headers) => Object.keys(headers),
  get: (headers, key) => headers[key],
};

function traceFlags(span: otel.Span): string {
  return span.spanContext().traceFlags.toString(16).padStart(2, '0');
}

function tracingHooks(
  app: FastifyInstance,
  { tracing }: { tracing: Tracing },
  ready: (error?: Error) => void,
): void {
  const { api, tracer } = tracing;
  // Keyed by Node's request: the span starts before Fastify's request object exists.
  const traces = new WeakMap<IncomingMessage, RequestTrace>();

  // Fastify makes each request's logger here, as the request arrives: the span starts here too,
  // so the logger carries its ids from the request's first line to its access line.
  app.setChildLoggerFactory(function childLogger(logger, bindings, options, raw) {
    // A request that joins no trace and that the sampler leaves out has no trace to find: no
    // span, no ids, at the cost of one decision.
    const root = raw.headers.traceparent === undefined ? tracing.sampleRoot() : api.ROOT_CONTEXT;
    if (root === undefined) return logger.child(bindings, options);
    const parent = api.propagation.extract(root, raw.headers, headerGetter);
    const method = raw.method ?? 'HTTP';
    const span = tracer.startSpan(
      method,
      { kind: api.SpanKind.SERVER, attributes: { 'http.request.method': method } },
      parent,
    );
    traces.set(raw, { span, context: api.trace.setSpan(parent, span) });
    const { traceId, spanId } = span.spanContext();
    return logger.child({ ...bindings, trace_id: traceId, span_id: spanId }, options);
  });

  // The rest of the request runs in the span's context: its hooks, handler and their awaits.
  app.addHook('onRequest', (request, reply, done) => {
    const trace = traces.get(request.raw);
    if (trace === undefined) {
      done();
      return;
    }
    const { span } = trace;
    const { traceId, spanId } = span.spanContext();
    void reply.header('traceresponse', `00-${traceId}-${spanId}-${traceFlags(span)}`);
    // A request the sampler left out makes no child spans, so it needs no context (which costs
    // every promise of the request a copy): its ids are in its logger and its response.
    if (span.isRecording()) api.context.with(trace.context, done);
    else done();
  });
  // A request body arrives in the socket's callbacks, outside that context: enter it again.
  app.addHook('preValidation', (request, _reply, done) => {
    const trace = traces.get(request.raw);
    if (trace?.span.isRecording() === true) api.context.with(trace.context, done);
    else done();
  });

  /** Ends the request's span, with the status sent, or none when the client left first. */
  const end = (request: FastifyRequest, status: number | undefined) => {
    const trace = traces.get(request.raw);
    if (trace === undefined) return;
    traces.delete(request.raw);
    const { span } = trace;
    if (span.isRecording()) {
      // The route's pattern, not the path: /movies/:id names one route, not one span per movie.
      const route = request.routeOptions.url;
      if (route !== undefined) {
        span.updateName(`${request.method} ${route}`);
        span.setAttribute('http.route', route);
      }
      span.setAttributes({
        'url.path': request.url.split('?', 1)[0] ?? '',
        'url.scheme': request.protocol,
        'network.protocol.version': request.raw.httpVersion,
        'client.address': request.ip,
      });
      if (status !== undefined) span.setAttribute('http.response.status_code', status);
      // HTTP semantic conventions: a server span fails on a 5xx, not on a client's 4xx.
      if (status === undefined) {
        span.setAttribute('error.type', 'aborted');
        span.setStatus({ code: api.SpanStatusCode.ERROR });
      } else if (status >= 500) {
        span.setAttribute('error.type', String(status));
        span.setStatus({ code: api.SpanStatusCode.ERROR });
      }
    }
    span.end();
  };
  app.addHook('onResponse', (request, reply, done) => {
    end(request, reply.statusCode);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    end(request, undefined);
    done();
  });
  ready();
}

/** Registered at the root (fastify-plugin), first, so that every other hook runs in the span. */
export const tracingPlugin = fp(tracingHooks, { name: 'myapi-tracing' });
