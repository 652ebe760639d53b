/**
 * The OpenTelemetry SDK, imported by backend/tracing.ts only when tracing is on: a tracer provider
 * with the sampler of OTEL_TRACES_SAMPLER(_ARG), spans batched (OTEL_BSP_*) to the OTLP/HTTP JSON
 * exporter (OTEL_EXPORTER_OTLP_*), the service named by OTEL_SERVICE_NAME or "myapi", W3C trace
 * context in and out, the context kept across awaits by AsyncLocalStorage.
 */
import * as api from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import { APP_NAME } from '../const.js';
import { VERSION } from '../version.js';
import type { Tracing } from './tracing.js';
import { samplingFromEnv } from './tracing_sampler.js';

/** The SDK's own messages (a failed export, a dropped span) as warnings of the process's log. */
function diagnosticsTo(logger: Logger): api.DiagLogger {
  const warn = (message: string) => {
    logger.warn({ component: 'opentelemetry' }, message);
  };
  const ignore = () => undefined;
  return { error: warn, warn, info: ignore, debug: ignore, verbose: ignore };
}

export async function startSdk(logger: Logger): Promise<Tracing> {
  api.diag.setLogger(diagnosticsTo(logger), api.DiagLogLevel.WARN);
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (envDetector) win over the defaults.
  const detected = detectResources({ detectors: [envDetector] });
  await detected.waitForAsyncAttributes?.();
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: APP_NAME,
    [ATTR_SERVICE_VERSION]: VERSION,
  }).merge(detected);
  const sampling = samplingFromEnv(process.env);
  const provider = new NodeTracerProvider({
    resource,
    sampler: sampling.sampler,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  return {
    api,
    tracer: provider.getTracer(APP_NAME, VERSION),
    sampleRoot: sampling.sampleRoot,
    // A collector that is down at the end costs the last spans, not a failed stop.
    shutdown: () =>
      provider.shutdown().catch((error: unknown) => {
        logger.warn({ component: 'opentelemetry', err: error }, 'could not send the last spans');
      }),
  };
}
