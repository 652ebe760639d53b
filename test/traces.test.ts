import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createServerDatabase, describeEachDatabase, TOKEN_KEY } from './support/databases.js';
import { OtlpReceiver, SPAN_KIND, type ReceivedSpan } from './support/otlp.js';
import {
  createUser,
  delay,
  freePort,
  runCli,
  runCommand,
  startServer,
  tempDir,
  TEST_TIMEOUT_MS,
  USER,
  type Server,
} from './support/process.js';

/**
 * `myapi serve` (the built dist/, as users run it) exporting its traces to an OTLP/HTTP receiver
 * the test runs; on the embedded default database and on the PostgreSQL server. Off by default,
 * where not one OpenTelemetry module may be loaded.
 */

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** Tracing off whatever the developer's shell exports: '' counts as unset. */
const TRACING_UNSET = {
  OTEL_EXPORTER_OTLP_ENDPOINT: '',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
  OTEL_SDK_DISABLED: '',
  OTEL_TRACES_EXPORTER: '',
  OTEL_TRACES_SAMPLER: '',
  OTEL_TRACES_SAMPLER_ARG: '',
};

function tracingTo(receiver: OtlpReceiver): Record<string, string> {
  return {
    ...TRACING_UNSET,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_SERVICE_NAME: 'myapi-traces-test',
    OTEL_TRACES_SAMPLER: 'parentbased_always_on',
    // Exported within 100 ms instead of 5 s.
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
}

function token(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/token`, {
    method: 'POST',
    headers,
    body: new URLSearchParams({ username: USER.email, password: USER.password }),
  });
}

/** The trace id a response says it joined (traceresponse: 00-trace-span-flags). */
function respondedTrace(response: Response): { traceId: string; spanId: string } {
  const header = response.headers.get('traceresponse') ?? '';
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(header);
  assert.ok(match?.[1] !== undefined && match[2] !== undefined, `traceresponse: ${header}`);
  return { traceId: match[1], spanId: match[2] };
}

function only(spans: ReceivedSpan[], test: (span: ReceivedSpan) => boolean, what: string) {
  const found = spans.filter(test);
  assert.equal(found.length, 1, `one ${what} in ${JSON.stringify(spans, null, 1)}`);
  return found[0] as ReceivedSpan;
}

const routeSpan = (name: string) => (spans: ReceivedSpan[]) =>
  spans.some((span) => span.name === name && span.kind === SPAN_KIND.server);

/** The request's log lines (access line included), once the server has written them. */
async function logLinesOf(server: Server, traceId: string) {
  await server.waitForOutput(
    () =>
      server
        .logLines()
        .some((line) => line.trace_id === traceId && line.msg === 'request completed'),
    `the access line of trace ${traceId}`,
  );
  return server.logLines().filter((line) => line.trace_id === traceId);
}

describeEachDatabase('traces over OTLP/HTTP', { concurrency: 1 }, (kind) => {
  const receiver = new OtlpReceiver();
  let server: Server;
  let drop: (() => Promise<void>) | undefined;

  before(
    async () => {
      await receiver.start();
      const cwd = tempDir();
      let env: Record<string, string> = {};
      if (kind === 'postgres') {
        const database = await createServerDatabase();
        drop = database.drop;
        env = { MYAPI_DATABASE__DSN: database.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY };
        for (const args of [['migrate'], ['seed']]) {
          const { exit, proc } = await runCli(args, cwd, env);
          assert.equal(exit.code, 0, proc.show());
        }
      }
      // With tracing configured, as operators set it for every command: the CLI exports nothing.
      await createUser(cwd, { ...env, ...tracingTo(receiver) });
      server = await startServer(cwd, { ...env, ...tracingTo(receiver) });
    },
    { timeout: TEST_TIMEOUT_MS },
  );
  after(async () => {
    await server.stop();
    await receiver.close();
    await drop?.();
  });

  it(
    "POST /token continues the caller's trace: route span > password and SQL spans, logs carry the id",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const traceId = hex(16);
      const callerSpan = hex(8);
      const response = await token(server.url, { traceparent: `00-${traceId}-${callerSpan}-01` });
      assert.equal(response.status, 200, await response.text());
      const responded = respondedTrace(response);
      assert.equal(responded.traceId, traceId, 'the incoming trace id is kept');

      const spans = await receiver.trace(traceId, routeSpan('POST /token'));
      const route = only(spans, (span) => span.kind === SPAN_KIND.server, 'server span');
      assert.equal(route.name, 'POST /token');
      assert.equal(route.parentSpanId, callerSpan, "a child of the caller's span");
      assert.equal(route.spanId, responded.spanId);
      assert.equal(route.attributes['http.route'], '/token');
      assert.equal(route.attributes['http.request.method'], 'POST');
      assert.equal(route.attributes['http.response.status_code'], 200);
      assert.equal(route.resource['service.name'], 'myapi-traces-test');

      const hash = only(spans, (span) => span.name === 'password verify', 'password span');
      assert.equal(hash.parentSpanId, route.spanId);
      const sql = spans.filter((span) => span.kind === SPAN_KIND.client);
      assert.ok(
        sql.some((span) => span.name === 'SELECT users'),
        JSON.stringify(sql, null, 1),
      );
      for (const span of sql) {
        assert.equal(span.parentSpanId, route.spanId, `${span.name} is a child of the route`);
        assert.equal(span.attributes['db.system.name'], 'postgresql');
        assert.match(String(span.attributes['db.query.text']), /^\s*[a-z]/i);
      }
      // The password and the address never reach a span (statements carry $n placeholders).
      assert.ok(!JSON.stringify(spans).includes(USER.password));
      assert.ok(!JSON.stringify(spans).includes(USER.email));
      assert.deepEqual([...new Set(receiver.contentTypes)], ['application/json']);

      const lines = await logLinesOf(server, traceId);
      const access = lines.find((line) => line.msg === 'request completed');
      assert.equal(access?.url, '/token');
      assert.equal(access.span_id, route.spanId);
    },
  );

  it(
    'GET /movies/new starts a trace: route span > SQL span; a 404 is named by its method',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const login = await token(server.url);
      const { access_token: accessToken } = (await login.json()) as { access_token: string };
      const response = await fetch(`${server.url}/movies/new?year=1990&rating=9`, {
        headers: { authorization: `Bearer ${accessToken}` },
      });
      assert.equal(response.status, 200, await response.text());
      const { traceId } = respondedTrace(response);

      const spans = await receiver.trace(traceId, routeSpan('GET /movies/new'));
      const route = only(spans, (span) => span.kind === SPAN_KIND.server, 'server span');
      assert.equal(route.parentSpanId, undefined, 'a new trace: the route span is its root');
      assert.equal(route.attributes['url.path'], '/movies/new');
      const movies = spans.filter((span) => span.name === 'SELECT movies');
      assert.ok(movies.length >= 1, JSON.stringify(spans, null, 1));
      for (const span of spans.filter((each) => each !== route)) {
        assert.equal(span.parentSpanId, route.spanId, `${span.name} is a child of the route`);
      }
      const lines = await logLinesOf(server, traceId);
      assert.ok(lines.every((line) => line.span_id === route.spanId));

      const missing = await fetch(`${server.url}/no/such/route`);
      assert.equal(missing.status, 404);
      const notFound = await receiver.trace(respondedTrace(missing).traceId, (found) =>
        found.some((span) => span.kind === SPAN_KIND.server),
      );
      assert.equal(notFound[0]?.name, 'GET');
      assert.equal(notFound[0].attributes['http.response.status_code'], 404);
    },
  );
});

/** A module hook that makes every import of an OpenTelemetry package throw. */
function forbidOpenTelemetry(dir: string): string {
  const hook = join(dir, 'no_otel_hook.mjs');
  writeFileSync(
    hook,
    `export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@opentelemetry/')) throw new Error('forbidden import of ' + specifier);
  return next(specifier, context);
}
`,
  );
  const register = join(dir, 'no_otel.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(hook).href)});
`,
  );
  return `--import=${register}`;
}

describe('tracing off, and misconfigured', { concurrency: 1 }, () => {
  it(
    'off by default: serves with every OpenTelemetry import refused, no trace header or id',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const cwd = tempDir();
      const env = { ...TRACING_UNSET, NODE_OPTIONS: forbidOpenTelemetry(cwd) };
      await createUser(cwd, env);
      const server = await startServer(cwd, env);
      try {
        const response = await token(server.url);
        assert.equal(response.status, 200, await response.text());
        assert.equal(response.headers.get('traceresponse'), null);
        await delay(100);
        assert.ok(server.logLines().every((line) => line.trace_id === undefined));
        assert.doesNotMatch(server.stderr, /forbidden import/);
      } finally {
        await server.stop();
      }

      // The hook is in force: with an endpoint set, the same start fails on the SDK's import.
      const receiver = new OtlpReceiver();
      await receiver.start();
      try {
        const port = await freePort();
        const result = await runCommand(['serve', '--port', String(port)], {
          cwd,
          env: { ...env, ...tracingTo(receiver) },
        });
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, /forbidden import of @opentelemetry\//);
      } finally {
        await receiver.close();
      }
    },
  );

  it(
    'refuses OTEL_* values it cannot honour, naming each',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const cwd = tempDir();
      const port = await freePort();
      const result = await runCommand(['serve', '--port', String(port)], {
        cwd,
        env: {
          ...TRACING_UNSET,
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
          OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
          OTEL_TRACES_SAMPLER_ARG: '1.5',
        },
      });
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /^myapi: error: OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported/,
      );
      assert.match(
        result.stderr,
        /OTEL_TRACES_SAMPLER_ARG: the ratio sampler needs a number from 0 to 1/,
      );
    },
  );
});

describe('a ratio sampler', { concurrency: 1 }, () => {
  it(
    'traces its share of the requests that join no trace, and leaves no trace id on the others',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const receiver = new OtlpReceiver();
      await receiver.start();
      const cwd = tempDir();
      const server = await startServer(cwd, {
        ...tracingTo(receiver),
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.5',
      });
      try {
        const asked = 200;
        const sampled: string[] = [];
        for (let i = 0; i < asked; i++) {
          const response = await fetch(`${server.url}/openapi.json`);
          await response.arrayBuffer();
          if (response.headers.get('traceresponse') !== null) {
            assert.match(String(response.headers.get('traceresponse')), /-01$/);
            sampled.push(respondedTrace(response).traceId);
          }
        }
        // Binomial(200, 0.5) falls outside 70..130 with a probability of about 2e-5; a decision
        // taken twice (before the span, then by the SDK) would give about a quarter, 50.
        assert.ok(sampled.length >= 70 && sampled.length <= 130, `${sampled.length} of ${asked}`);
        for (const traceId of sampled)
          await receiver.trace(traceId, routeSpan('GET /openapi.json'));
        // The readiness polls before (GET /ready) are sampled too: only the /openapi.json ones count.
        const exported = new Set(
          receiver.spans
            .filter((span) => span.name === 'GET /openapi.json' && span.kind === SPAN_KIND.server)
            .map((span) => span.traceId),
        );
        assert.equal(exported.size, sampled.length, 'a request without traceresponse was exported');
        await delay(100);
        const logged = server
          .logLines()
          .filter((line) => line.trace_id !== undefined && line.url === '/openapi.json');
        assert.ok(logged.length >= sampled.length, 'a sampled request has no trace id in the log');
        assert.ok(
          logged.every((line) => sampled.includes(String(line.trace_id))),
          'a request left out by the sampler has a trace id in the log',
        );
      } finally {
        await server.stop();
        await receiver.close();
      }
    },
  );
});
