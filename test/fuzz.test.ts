// Fuzzing from the served OpenAPI document: no 5xx, no lost connection, every answer documented.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import fc from 'fast-check';
import { describeEachDatabase, type TestApp } from './support/databases.js';
import { adminAuthorization, createUser, tutorialApp } from './support/http.js';
import {
  operationsOf,
  requestOf,
  type FuzzRequest,
  type JsonSchema,
  type OpenApi,
  type Operation,
} from './support/openapi_fuzz.js';

/** Requests per database; FUZZ_RUNS raises it for a longer hunt. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
/** FUZZ_SEED replays a run: the seed is printed at the start of each. */
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
/** Requests in flight at once, over the keep-alive connections of fetch. */
const CONCURRENCY = 4;

/** Writes to the users the tokens belong to (ids 1 and 2) go to user 3: the run keeps its tokens. */
const TOKEN_USERS = /^\/users\/[12](?=\?|$)/;

interface Answer {
  status: number;
  type: string;
  body: string;
}

/** Compiles the documented body schema of each (operation, status, media type) once. */
class ResponseContract {
  private readonly ajv = new Ajv({ strict: false, validateFormats: false, allErrors: false });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(document: OpenApi) {
    for (const [name, schema] of Object.entries(document.components.schemas)) {
      this.ajv.addSchema(localRefs(schema), name);
    }
  }

  /** Why `answer` breaks the contract of `operation`, or undefined when it keeps it. */
  check(operation: Operation, answer: Answer): string | undefined {
    const documented = operation.responses[String(answer.status)];
    if (documented === undefined) return `status ${answer.status} is not documented`;
    const mediaType = answer.type.split(';')[0]?.trim() ?? '';
    const media = documented.content?.[mediaType];
    if (answer.body === '') return undefined;
    if (media === undefined) return `content type ${answer.type} is not documented`;
    if (media.schema === undefined) return undefined;
    const key = `${operation.method} ${operation.path} ${answer.status} ${mediaType}`;
    let validate = this.compiled.get(key);
    if (validate === undefined) {
      validate = this.ajv.compile(localRefs(media.schema));
      this.compiled.set(key, validate);
    }
    let parsed: unknown;
    try {
      parsed = mediaType.endsWith('json') ? JSON.parse(answer.body) : answer.body;
    } catch {
      return 'the body is not JSON';
    }
    return validate(parsed) ? undefined : `body: ${this.ajv.errorsText(validate.errors)}`;
  }
}

/** The document's `#/components/schemas/X` references as Ajv ids `X`. */
function localRefs(schema: JsonSchema): JsonSchema {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"')) as JsonSchema;
}

async function runPool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const workers = Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await work(item);
    }
  });
  await Promise.all(workers);
}

describeEachDatabase('fuzzing from /openapi.json', (kind) => {
  let t: TestApp;
  let base: string;
  const tokens: Record<'admin' | 'user', string> = { admin: '', user: '' };
  before(async () => {
    let user: string;
    ({ t, authorization: user } = await tutorialApp(kind));
    tokens.user = user;
    tokens.admin = await adminAuthorization(t);
    // Users the fuzzer may delete or change: ids 3 to 6.
    for (let i = 0; i < 4; i += 1) {
      await createUser(t, {
        name: `fuzz ${i}`,
        email: `fuzz${i}@myapi.com`,
        password: 'fuzz-password-1',
      });
    }
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await t.close();
  });

  it(`answers ${RUNS} generated requests with documented 4xx or 2xx, never a 5xx or a reset`, async () => {
    console.log(`fuzz (${kind}): seed ${SEED}, ${RUNS} requests (FUZZ_SEED=${SEED} replays)`);
    const document = (await (await fetch(`${base}/openapi.json`)).json()) as OpenApi;
    const operations = operationsOf(document);
    assert.ok(operations.length >= 15, `${operations.length} operations`);
    const contract = new ResponseContract(document);
    const byName = new Map(operations.map((op) => [`${op.method} ${op.path}`, op]));
    const requests = fc.sample(fc.oneof(...operations.map(requestOf)), {
      seed: SEED,
      numRuns: RUNS,
    });

    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let connectionErrors = 0;
    const started = performance.now();
    await runPool(requests, CONCURRENCY, async (request: FuzzRequest) => {
      const operation = byName.get(request.operation) as Operation;
      let path = request.path;
      if (request.method !== 'GET') path = path.replace(TOKEN_USERS, '/users/3');
      const headers = { ...request.headers };
      if (request.auth === 'admin' || request.auth === 'user')
        headers.authorization = tokens[request.auth];
      let answer: Answer;
      try {
        const response = await fetch(`${base}${path}`, {
          method: request.method,
          headers,
          body: request.body,
        });
        answer = {
          status: response.status,
          type: response.headers.get('content-type') ?? '',
          body: await response.text(),
        };
      } catch (error) {
        connectionErrors += 1;
        failures.push(
          `${request.method} ${path}: ${String(error)} ${String((error as Error).cause)}`,
        );
        return;
      }
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const broken = answer.status >= 500 ? 'a 5xx' : contract.check(operation, answer);
      if (broken !== undefined) {
        failures.push(
          `${request.method} ${path.slice(0, 300)} (${request.auth}) ${JSON.stringify(request.headers).slice(0, 200)} ` +
            `body=${String(request.body).slice(0, 300)} -> ` +
            `${answer.status} ${answer.body.slice(0, 300)}: ${broken}`,
        );
      }
    });
    const seconds = (performance.now() - started) / 1000;
    const summary = [...statuses]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s}:${n}`)
      .join(' ');
    console.log(
      `fuzz (${kind}): ${requests.length} requests in ${seconds.toFixed(1)} s; ${summary}`,
    );
    assert.equal(connectionErrors, 0, 'connection errors');
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} broken answers (seed ${SEED})`);
    // The tokens the run used must still work, or most of it was answered 401.
    const me = await fetch(`${base}/users/me`, { headers: { authorization: tokens.admin } });
    assert.equal(me.status, 200);
  });
});
