/**
 * The sampler of OTEL_TRACES_SAMPLER(_ARG), built from the SDK's public samplers, with the root
 * decision available before a request's span exists: a request that joins no trace and that the
 * sampler leaves out then costs no span at all (routers/tracing.ts), nor a trace id.
 */
import * as api from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
} from '@opentelemetry/sdk-trace-node';

/** Set in the context of a root span whose sampling was decided already (sampleRoot). */
const DECIDED = api.createContextKey('myapi sampled root');

/** Honours a root decision taken already; asks the configured sampler otherwise. */
class DecidedRootSampler implements Sampler {
  constructor(private readonly configured: Sampler) {}

  shouldSample(
    context: api.Context,
    traceId: string,
    spanName: string,
    spanKind: api.SpanKind,
    attributes: api.Attributes,
    links: api.Link[],
  ): SamplingResult {
    if (context.getValue(DECIDED) === true) {
      return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    }
    return this.configured.shouldSample(context, traceId, spanName, spanKind, attributes, links);
  }

  toString(): string {
    return `DecidedRootSampler{${this.configured.toString()}}`;
  }
}

/**
 * The root decision of a request that joins no trace. The SDK's ratio sampler reads it from a
 * trace id, which would have to be made for every request only to be thrown away (the span that
 * a sampled request starts gets its own): a random draw at the same ratio samples the same share
 * without it (bench/README.md, Tracing). The configured sampler still decides every other span.
 */
function rootDecision(
  name: string,
  ratio: number,
  decided: api.Context,
): () => api.Context | undefined {
  if (name.endsWith('always_on')) return () => decided;
  if (name.endsWith('always_off')) return () => undefined;
  return () => (Math.random() < ratio ? decided : undefined);
}

export interface RequestSampling {
  /** The provider's sampler. */
  sampler: Sampler;
  /**
   * For a request without trace context: the context to start its sampled root span in, or
   * undefined when the sampler leaves such a request out.
   */
  sampleRoot: () => api.Context | undefined;
}

/** From the variables tracingWanted (backend/tracing.ts) has checked; the spec's defaults. */
export function samplingFromEnv(env: NodeJS.ProcessEnv): RequestSampling {
  const name = env.OTEL_TRACES_SAMPLER?.trim() || 'parentbased_always_on';
  const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG?.trim() || '1');
  const root: Sampler = name.endsWith('always_on')
    ? new AlwaysOnSampler()
    : name.endsWith('always_off')
      ? new AlwaysOffSampler()
      : new TraceIdRatioBasedSampler(ratio);
  const configured = name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
  const decided = api.ROOT_CONTEXT.setValue(DECIDED, true);
  return {
    sampler: new DecidedRootSampler(configured),
    sampleRoot: rootDecision(name, ratio, decided),
  };
}
