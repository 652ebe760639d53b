/**
 * One span per SQL statement, when tracing is on (backend/tracing.ts): a pool whose queries, and
 * the queries of the connections it hands out for transactions, run in a child span of the
 * request's. The span starts where the query is asked, in the request's context, so it covers
 * the wait for a free connection, and it never follows the callbacks inside pg-pool (which
 * would hand it to whichever request released that connection).
 */
import type pg from 'pg';
import { activeTracing, inChildSpan, type SpanDescription } from '../tracing.js';

type QueryArgs = [config: unknown, ...rest: unknown[]];

/** The statement's text, however it was given: a string or a query config. */
function statementText(config: unknown): string {
  if (typeof config === 'string') return config;
  if (typeof config === 'object' && config !== null && 'text' in config) {
    const { text } = config;
    if (typeof text === 'string') return text;
  }
  return '';
}

const OPERATION = /^\s*([a-z]+)/i;
const IDENTIFIER = String.raw`(?:"[^"]+"|\w+)`;
/** The first table a statement names, schema-qualified or not: the last part is the table. */
const TARGET = new RegExp(
  String.raw`\b(?:from|into|update|join)\s+(${IDENTIFIER}(?:\.${IDENTIFIER})?)`,
  'i',
);

/**
 * Named as OpenTelemetry's database conventions say, by operation and table ("SELECT movies");
 * the text has placeholders ($1) and never the values, which stay out of traces as out of logs.
 */
export function describeStatement(text: string): SpanDescription {
  const operation = OPERATION.exec(text)?.[1]?.toUpperCase() ?? 'SQL';
  const target = TARGET.exec(text)?.[1]?.split('.').pop()?.replaceAll('"', '');
  const attributes: SpanDescription['attributes'] = {
    'db.system.name': 'postgresql',
    'db.operation.name': operation,
    'db.query.text': text,
  };
  if (target !== undefined) attributes['db.collection.name'] = target;
  return { name: target === undefined ? operation : `${operation} ${target}`, attributes };
}

type Query = (...args: QueryArgs) => unknown;

/** `query` in a span, for the promise form that drizzle and the hot reads use. */
function tracedQuery(query: Query): Query {
  return (...args) => {
    // A callback-style call is passed through as it is.
    if (typeof args[args.length - 1] === 'function') return query(...args);
    return inChildSpan(
      () => describeStatement(statementText(args[0])),
      () => query(...args) as Promise<unknown>,
      'client',
    );
  };
}

function tracedClient(client: pg.PoolClient): pg.PoolClient {
  const query = tracedQuery(client.query.bind(client));
  return new Proxy(client, {
    get: (target, property, receiver): unknown =>
      property === 'query' ? query : Reflect.get(target, property, receiver),
  });
}

/**
 * The pool itself when tracing is off; traced, otherwise. Still a pg.Pool to drizzle (which
 * checks, to take a connection of its own for a transaction): a proxy of this one, with only
 * query and connect replaced.
 */
export function tracedPool(pool: pg.Pool): pg.Pool {
  if (activeTracing() === undefined) return pool;
  const query = tracedQuery(pool.query.bind(pool));
  const connectOnce = pool.connect.bind(pool);
  const connect = async (...args: unknown[]): Promise<unknown> => {
    // A callback-style call is passed through as it is.
    if (args.length > 0) return Reflect.apply(connectOnce, undefined, args) as unknown;
    return tracedClient(await connectOnce());
  };
  return new Proxy(pool, {
    get(target, property, receiver): unknown {
      if (property === 'query') return query;
      if (property === 'connect') return connect;
      return Reflect.get(target, property, receiver);
    },
  });
}
