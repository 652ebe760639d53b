// Requests generated from the served OpenAPI document: valid, boundary and malformed values.
import fc from 'fast-check';
import {
  asText,
  field,
  objectOf,
  rarely,
  segment,
  text,
  valid,
  type JsonSchema,
} from './fuzz_values.js';

export type { JsonSchema } from './fuzz_values.js';

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

/**
 * Cursors: positions shaped like ours, with odd values, made for the request's own sort and
 * order most of the time (so they get past the check that they belong to it), and junk.
 */
interface CursorPosition {
  madeFor: [string, string] | null;
  value: unknown;
  movieId: unknown;
}
const cursor = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      madeFor: rarely(
        fc.tuple(fc.constantFrom('movie_id', 'title', 'rating', 'x'), fc.constantFrom('asc', 'x')),
        4,
      ),
      value: fc.oneof(
        // NUL in a title: PostgreSQL's text cannot hold it, so a cursor must not carry it to SQL.
        { arbitrary: fc.constantFrom('\u0000', 'a\u0000'), weight: 3 },
        fc.constantFrom('Zz', 1e308, -1, null),
        fc.integer(),
        fc.string({ unit: 'binary', maxLength: 20 }),
      ),
      movieId: fc.oneof(
        { arbitrary: fc.integer({ min: 0, max: 200 }), weight: 4 },
        fc.integer({ min: -1, max: 2 ** 31 }),
        fc.constant('1'),
      ),
    }),
  },
  fc.constantFrom('abc', '====', '!', 'W10', 'bnVsbA'),
);

function isPosition(value: unknown): value is CursorPosition {
  return typeof value === 'object' && value !== null && 'madeFor' in value;
}

/** The cursor for `position`, made for the sort and order of `query` unless it says otherwise. */
function encodeCursor(position: CursorPosition, query: URLSearchParams): string {
  const [sort, order] = position.madeFor ?? [
    query.get('sort') ?? 'movie_id',
    query.get('order') ?? 'asc',
  ];
  const parts = [sort, order, position.value, position.movieId];
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

const ifMatch = fc.constantFrom('*', '"abc"', 'W/"abc"', '', '"', 'garbage', '"a", "b"', '*, "x"');

function encodeForm(record: Record<string, unknown>): string {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(record)) form.append(name, asText(value));
  return form.toString();
}

/**
 * One request to `operation`: its parameters, body, content type and credentials, fuzzed. Half
 * of them have only valid values, so they reach the services and the database; the other half
 * have some values broken.
 */
export function requestOf(operation: Operation): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(requestWith(operation, valid), requestWith(operation, field));
}

function requestWith(
  operation: Operation,
  field: (schema: JsonSchema) => fc.Arbitrary<unknown>,
): fc.Arbitrary<FuzzRequest> {
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
        } else if (value !== undefined && parameter.in === 'query' && !isPosition(value)) {
          query.append(parameter.name, asText(value));
        } else if (
          value !== undefined &&
          parameter.in === 'header' &&
          /^[\t\x20-\x7e]*$/.test(asText(value))
        ) {
          headers[parameter.name] = asText(value);
        }
      }
      for (const [parameter, value] of given) {
        if (isPosition(value)) query.append(parameter.name, encodeCursor(value, query));
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
