/**
 * The tracing switch: OpenTelemetry traces, configured by the standard OTEL_* variables and off
 * unless asked for. Off, nothing of OpenTelemetry is loaded (the SDK and the API are imported
 * only when on), and every seam below costs one check of an unset variable.
 */
import type * as otel from '@opentelemetry/api';
import type { Logger } from 'pino';

/** What the seams (HTTP hooks, the database wrapper, the hasher) need from a started SDK. */
export interface Tracing {
  readonly api: typeof otel;
  readonly tracer: otel.Tracer;
  /**
   * For a request without trace context: the context its sampled root span starts in, or
   * undefined when the sampler leaves it out (then nothing of it is traced).
   */
  readonly sampleRoot: () => otel.Context | undefined;
  /** Flushes the spans still buffered and stops exporting. */
  shutdown(): Promise<void>;
}

/** OTEL_* variables that cannot be honoured: the server refuses to start, naming them. */
export class TracingConfigError extends Error {
  override name = 'TracingConfigError';
}

const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

function given(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/**
 * On when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
 * OTEL_EXPORTER_OTLP_ENDPOINT), or when OTEL_SDK_DISABLED=false asks for the default endpoint
 * (http://localhost:4318); OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none keep it off.
 * Throws TracingConfigError, listing every problem, for values the exporter would ignore.
 */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  const disabled = given(env, 'OTEL_SDK_DISABLED')?.toLowerCase();
  const exporter = given(env, 'OTEL_TRACES_EXPORTER')?.toLowerCase();
  const endpoint =
    given(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? given(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (disabled === 'true' || exporter === 'none') return false;
  if (endpoint === undefined && disabled !== 'false') return false;
  const problems: string[] = [];
  if (exporter !== undefined && exporter !== 'otlp') {
    problems.push(`OTEL_TRACES_EXPORTER: "${exporter}" is not supported (otlp or none)`);
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const protocol = given(env, name);
    if (protocol !== undefined && protocol !== 'http/json') {
      problems.push(`${name}: "${protocol}" is not supported (http/json)`);
    }
  }
  const sampler = given(env, 'OTEL_TRACES_SAMPLER');
  if (sampler !== undefined && !SAMPLERS.includes(sampler)) {
    problems.push(`OTEL_TRACES_SAMPLER: "${sampler}" is not one of ${SAMPLERS.join(', ')}`);
  }
  const ratio = given(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (sampler?.endsWith('traceidratio') === true) {
    const value = Number(ratio);
    if (ratio === undefined || !Number.isFinite(value) || value < 0 || value > 1) {
      problems.push('OTEL_TRACES_SAMPLER_ARG: the ratio sampler needs a number from 0 to 1');
    }
  }
  if (problems.length > 0) throw new TracingConfigError(problems.join('\n'));
  return true;
}

let active: Tracing | undefined;

/** The started SDK, or undefined when tracing is off. */
export function activeTracing(): Tracing | undefined {
  return active;
}

/**
 * Starts exporting traces when process.env asks for it (tracingWanted); the SDK's own
 * complaints (an export that failed) go to `logger` as warnings. Idempotent.
 */
export async function startTracing(logger: Logger): Promise<boolean> {
  if (active !== undefined) return true;
  // The SDK reads process.env itself (the exporter, the sampler): so does the switch.
  if (!tracingWanted(process.env)) return false;
  const { startSdk } = await import('./tracing_sdk.js');
  active = await startSdk(logger);
  return true;
}

/** Flushes and stops tracing, if it was started. */
export async function stopTracing(): Promise<void> {
  const tracing = active;
  active = undefined;
  await tracing?.shutdown();
}

/** A span's name and attributes, worked out only for a span that is recorded. */
export interface SpanDescription {
  name: string;
  attributes: otel.Attributes;
}

/**
 * Runs `work` in a span that is a child of the current one (the request's); with tracing off,
 * outside any traced request (start-up, background work) or in a request the sampler left out,
 * it just runs `work`. `describe` runs only for a recorded span.
 */
export function inChildSpan<T>(
  describe: () => SpanDescription,
  work: () => Promise<T>,
  kind: 'internal' | 'client' = 'internal',
): Promise<T> {
  if (active === undefined) return work();
  const { api, tracer } = active;
  const parent = api.context.active();
  // Children of an unsampled request would be unsampled too: they are not made at all.
  if (api.trace.getSpan(parent)?.isRecording() !== true) return work();
  const spanKind = kind === 'client' ? api.SpanKind.CLIENT : api.SpanKind.INTERNAL;
  const span = tracer.startSpan('span', { kind: spanKind }, parent);
  if (span.isRecording()) {
    const { name, attributes } = describe();
    span.updateName(name);
    span.setAttributes(attributes);
  }
  return api.context.with(api.trace.setSpan(parent, span), work).then(
    (value) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      endWithError(api, span, error);
      throw error;
    },
  );
}

/** Ends a span as failed, with the error's class only: messages can quote values. */
export function endWithError(api: typeof otel, span: otel.Span, error: unknown): void {
  const type = error instanceof Error ? error.name : typeof error;
  span.setAttribute('error.type', type);
  span.setStatus({ code: api.SpanStatusCode.ERROR });
  span.end();
}
