// Requests generated from the served OpenAPI document: valid, boundary and malformed values.
import fc from 'fast-check';

export interface JsonSchema {
  type?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  examples?: unknown[];
  default?: unknown;
}

interface Parameter {
  in: 'query' | 'path' | 'header';
  name: string;
  required?: boolean;
  schema: JsonSchema;
}

export interface MediaType {
  schema?: JsonSchema;
}

export interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  body: { mediaType: string; schema: JsonSchema } | undefined;
  responses: Record<string, { content?: Record<string, MediaType> }>;
}

export interface OpenApi {
  paths: Record<
    string,
    Record<
      string,
      Omit<Operation, 'method' | 'path' | 'body' | 'parameters'> & { parameters?: Parameter[] }
    >
  >;
  components: { schemas: Record<string, JsonSchema> };
}

/** Every operation of the document, with its request body's first media type. */
export function operationsOf(document: OpenApi): Operation[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => {
      const requestBody = (
        operation as { requestBody?: { content: Record<string, { schema: JsonSchema }> } }
      ).requestBody;
      const [mediaType, media] = Object.entries(requestBody?.content ?? {})[0] ?? [];
      return {
        method: method.toUpperCase(),
        path,
        parameters: operation.parameters ?? [],
        body: mediaType === undefined || media === undefined ? undefined : { mediaType, ...media },
        responses: operation.responses,
      };
    }),
  );
}

/** Strings no API field should choke on: control characters, NUL, odd Unicode, text numbers. */
const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u0001\u001f\u007f',
  '\t\r\n',
  '\u202e\u200b\ufeff',
  '😀',
  "'; drop table movies; --",
  '%',
  '%00',
  '../../etc/passwd',
  'Infinity',
  '-Infinity',
  'NaN',
  '1e400',
  '-1e400',
  '0x1',
  '0b101',
  '0o7',
  '1e3',
  ' 1',
  '1 ',
  '+1',
  '-0',
  '1.5',
  '99999999999999999999999',
  'true',
  'null',
  '[]',
  '{}',
];

const text = (maxLength: number) =>
  fc.oneof(
    fc.constantFrom(...NASTY_STRINGS),
    fc.string({ unit: 'binary', maxLength }),
    fc.integer({ min: 1, max: 5000 }).map((n) => 'x'.repeat(n)),
  );

/** A valid value of `schema` (examples and defaults included), as a JSON value. */
function valid(schema: JsonSchema): fc.Arbitrary<unknown> {
  const picks: fc.Arbitrary<unknown>[] = [];
  if (schema.examples !== undefined && schema.examples.length > 0) {
    picks.push(fc.constantFrom(...schema.examples));
  }
  if (schema.enum !== undefined) picks.push(fc.constantFrom(...schema.enum));
  if (schema.anyOf !== undefined) picks.push(fc.oneof(...schema.anyOf.map(valid)));
  const min = schema.minimum ?? -1000;
  const max = schema.maximum ?? 100_000;
  switch (schema.type) {
    case 'integer':
      picks.push(fc.integer({ min, max }), fc.constantFrom(min, max));
      break;
    case 'number':
      picks.push(fc.integer({ min: min * 10, max: max * 10 }).map((n) => n / 10));
      break;
    case 'boolean':
      picks.push(fc.boolean());
      break;
    case 'string':
      picks.push(
        fc.string({
          minLength: schema.minLength ?? 0,
          maxLength: Math.min(schema.maxLength ?? 40, 40),
        }),
      );
      break;
    case 'object':
      picks.push(objectOf(schema, valid));
      break;
    default:
      break;
  }
  return picks.length === 0 ? fc.constant('x') : fc.oneof(...picks);
}

/** Just outside or on the edge of `schema`'s limits, and values of other types. */
function invalid(schema: JsonSchema): fc.Arbitrary<unknown> {
  const edges: unknown[] = [
    null,
    true,
    [],
    {},
    1.5,
    -1,
    0,
    2 ** 31,
    2 ** 53 + 2,
    -(2 ** 63),
    1e308,
  ];
  if (schema.minimum !== undefined) edges.push(schema.minimum - 1, schema.minimum - 0.05);
  if (schema.maximum !== undefined) edges.push(schema.maximum + 1, schema.maximum + 0.05);
  if (schema.maxLength !== undefined) edges.push('y'.repeat(schema.maxLength + 1));
  return fc.oneof(fc.constantFrom(...edges), text(300));
}

function objectOf(
  schema: JsonSchema,
  value: (schema: JsonSchema) => fc.Arbitrary<unknown>,
): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(properties).map(([name, property]) =>
    fc
      .option(value(property), { nil: undefined, freq: required.has(name) ? 20 : 3 })
      .map((v) => [name, v] as const),
  );
  return fc
    .tuple(...fields)
    .map((pairs) => Object.fromEntries(pairs.filter(([, v]) => v !== undefined)));
}

/** A value of one field: mostly valid, sometimes broken. */
function field(schema: JsonSchema): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: valid(schema), weight: 6 },
    { arbitrary: invalid(schema), weight: 1 },
  );
}

/** `arbitrary`'s value once in `every` draws, null otherwise. */
function rarely<T>(arbitrary: fc.Arbitrary<T>, every: number): fc.Arbitrary<T | null> {
  return fc.oneof({ arbitrary: fc.constant(null), weight: every - 1 }, { arbitrary, weight: 1 });
}

/** A path segment, even from a string with lone surrogates (which encodeURIComponent refuses). */
function segment(value: string): string {
  return encodeURIComponent(value.replace(/[\uD800-\uDFFF]/g, '\uFFFD'));
}

/** As a URL or header parameter: the text of a JSON value. */
function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export interface FuzzRequest {
  method: string;
  path: string;
  operation: string;
  headers: Record<string, string>;
  body: string | undefined;
  auth: 'admin' | 'user' | 'junk' | 'none';
}

const JUNK_TOKENS = [
  'Bearer junk',
  'Bearer a.b.c',
  'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.',
  'Basic dXNlcjpwYXNz',
  `Bearer ${'x'.repeat(3000)}`,
  'Bearer',
];
const MEDIA_TYPES = [
  'text/plain',
  'application/xml',
  'application/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
];
const RAW_BODIES = [
  '{',
  '[]',
  'null',
  '"x"',
  '',
  '1e400',
  '{"a":1e400}',
  '\u0000',
  '{"__proto__":{"x":1}}',
];

/** Cursors: made-up base64url JSON arrays shaped like ours, with odd values, and junk. */
const cursor = fc.oneof(
  fc
    .tuple(
      // Mostly the default order and the title sort, whose string value reaches SQL.
      fc.oneof(
        { arbitrary: fc.constantFrom('movie_id', 'title'), weight: 4 },
        fc.constantFrom('released', 'rating', 'x'),
      ),
      fc.oneof({ arbitrary: fc.constant('asc'), weight: 4 }, fc.constantFrom('desc', 'x')),
      fc.oneof(fc.constantFrom('\u0000', 'a\u0000', 1e308, -1, 'Zz', null), fc.integer()),
      fc.oneof(fc.integer({ min: -1, max: 2 ** 31 }), fc.constant('1')),
    )
    .map((parts) => Buffer.from(JSON.stringify(parts)).toString('base64url')),
  fc.constantFrom('abc', '====', '!', 'W10', 'bnVsbA'),
);

const ifMatch = fc.constantFrom('*', '"abc"', 'W/"abc"', '', '"', 'garbage', '"a", "b"', '*, "x"');

function encodeForm(record: Record<string, unknown>): string {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(record)) form.append(name, asText(value));
  return form.toString();
}

/** One request to `operation`: its parameters, body, content type and credentials, fuzzed. */
export function requestOf(operation: Operation): fc.Arbitrary<FuzzRequest> {
  const values = operation.parameters.map((parameter) =>
    fc
      .option(
        parameter.name === 'cursor'
          ? cursor
          : parameter.name === 'if-match'
            ? ifMatch
            : field(parameter.schema),
        { nil: undefined, freq: parameter.required === true || parameter.in === 'path' ? 30 : 2 },
      )
      .map((value) => [parameter, value] as const),
  );
  const body = operation.body;
  const bodyArb: fc.Arbitrary<{ text: string; type: string } | undefined> =
    body === undefined
      ? rarely(
          fc.record({
            text: fc.constantFrom(...RAW_BODIES),
            type: fc.constantFrom(...MEDIA_TYPES),
          }),
          5,
        ).map((sent) => (sent === null || operation.method === 'GET' ? undefined : sent))
      : fc
          .oneof(
            { arbitrary: objectOf(body.schema, field).map((o) => ({ object: o })), weight: 8 },
            { arbitrary: fc.constant({ object: undefined }), weight: 1 },
          )
          .chain(({ object }) =>
            fc.record({
              object: fc.constant(object),
              extra: rarely(fc.tuple(fc.string({ maxLength: 10 }), field({})), 6),
              type: fc.oneof(
                { arbitrary: fc.constant(body.mediaType), weight: 8 },
                fc.constantFrom(...MEDIA_TYPES),
              ),
              raw: rarely(fc.constantFrom(...RAW_BODIES), 8),
            }),
          )
          .map(({ object, extra, type, raw }) => {
            const record = { ...object, ...(extra === null ? {} : { [extra[0]]: extra[1] }) };
            const encoded = body.mediaType.includes('json')
              ? JSON.stringify(record)
              : encodeForm(record);
            return { text: raw ?? encoded, type };
          });
  const extraQuery = rarely(
    fc.tuple(fc.constantFrom('x', 'limit', 'q', 'access_token', '__proto__'), text(20)),
    6,
  );
  return fc
    .record({
      values: fc.tuple(...values),
      body: bodyArb,
      extraQuery,
      // Valid tokens most of the time, so that most requests get past authentication.
      auth: fc.oneof(
        { arbitrary: fc.constantFrom<FuzzRequest['auth'][]>('admin', 'user'), weight: 3 },
        fc.constantFrom<FuzzRequest['auth'][]>('junk', 'none'),
      ),
      junk: fc.constantFrom(...JUNK_TOKENS),
      // Headers beyond Node's limit: 431, and the keep-alive connection must end cleanly.
      padding: rarely(fc.constant('x'.repeat(20_000)), 150),
    })
    .map(({ values: given, body: sent, extraQuery: extra, auth, junk, padding }) => {
      let path = operation.path;
      const query = new URLSearchParams();
      const headers: Record<string, string> = {};
      for (const [parameter, value] of given) {
        if (parameter.in === 'path') {
          const text = value === undefined ? '' : asText(value);
          path = path.replace(`{${parameter.name}}`, segment(text));
        } else if (value !== undefined && parameter.in === 'query') {
          query.append(parameter.name, asText(value));
        } else if (value !== undefined && /^[\t\x20-\x7e]*$/.test(asText(value))) {
          headers[parameter.name] = asText(value);
        }
      }
      if (extra !== null) query.append(extra[0], extra[1]);
      if (sent !== undefined) headers['content-type'] = sent.type;
      if (auth === 'junk') headers.authorization = junk;
      if (padding !== null) headers['x-padding'] = padding;
      const search = query.toString();
      return {
        method: operation.method,
        path: search === '' ? path : `${path}?${search}`,
        operation: `${operation.method} ${operation.path}`,
        headers,
        body: sent?.text,
        auth,
      };
    });
}
