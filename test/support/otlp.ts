// An OTLP/HTTP receiver for the tests: a node:http server taking the JSON exports of /v1/traces.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { delay, PROCESS_TIMEOUT_MS } from './process.js';

/** One attribute as OTLP/JSON encodes it: a key and a typed value. */
interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string; boolValue?: boolean };
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
  status?: { code?: number };
}

interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

/** A received span, its attributes and its resource's as plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  resource: Record<string, string | number | boolean>;
  statusCode: number;
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;

function plain(attributes: OtlpAttribute[] = []): Record<string, string | number | boolean> {
  const values: Record<string, string | number | boolean> = {};
  for (const { key, value } of attributes) {
    if (value.stringValue !== undefined) values[key] = value.stringValue;
    else if (value.boolValue !== undefined) values[key] = value.boolValue;
    else if (value.intValue !== undefined) values[key] = Number(value.intValue);
  }
  return values;
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Content types of the exports received: the exporter is expected to send JSON. */
  readonly contentTypes: string[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (request.method !== 'POST' || request.url !== '/v1/traces') {
          response.writeHead(404).end();
          return;
        }
        this.contentTypes.push(request.headers['content-type'] ?? '');
        this.receive(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport);
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
  }

  private receive(body: OtlpExport): void {
    for (const resourceSpans of body.resourceSpans ?? []) {
      const resource = plain(resourceSpans.resource?.attributes);
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId === '' ? undefined : span.parentSpanId,
            name: span.name,
            kind: span.kind,
            attributes: plain(span.attributes),
            resource,
            statusCode: span.status?.code ?? 0,
          });
        }
      }
    }
  }

  /** The spans of one trace, once `done` says they are all in (the exporter batches). */
  async trace(
    traceId: string,
    done: (spans: ReceivedSpan[]) => boolean,
    timeoutMs = PROCESS_TIMEOUT_MS,
  ): Promise<ReceivedSpan[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const spans = this.spans.filter((span) => span.traceId === traceId);
      if (done(spans)) return spans;
      if (Date.now() > deadline) {
        throw new Error(`trace ${traceId} incomplete: ${JSON.stringify(spans, null, 1)}`);
      }
      await delay(50);
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.server === undefined) resolve();
      else
        this.server.close(() => {
          resolve();
        });
    });
  }
}
