import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { DEFAULT_DSN, DEFAULT_TOKEN_EXPIRE_MINUTES } from '../const.js';

const PREFIX = 'MYAPI_';
const NESTING = '__';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const TRUST_PROXY_FORMS =
  'false, true, or comma-separated proxy addresses/CIDRs (loopback, linklocal and uniquelocal name ranges)';

/** Each setting with the sentence shown when its value is wrong, so an operator knows what to write. */
const SETTINGS = {
  database: Type.Object(
    {
      dsn: Type.String({
        default: DEFAULT_DSN,
        pattern: '^(postgres(ql)?://.+|pglite:.+)$',
        description: 'a postgresql:// URL, pglite:<directory> or pglite:memory',
      }),
      pool_max: Type.Integer({
        default: 10,
        minimum: 1,
        maximum: 200,
        description: 'an integer from 1 to 200',
      }),
      // How long a request waits for a free connection before it gets 503 with Retry-After.
      acquire_timeout_ms: Type.Integer({
        default: 1000,
        minimum: 1,
        maximum: 60_000,
        description: 'an integer of milliseconds from 1 to 60000',
      }),
      // Server-side limits set on every connection to a PostgreSQL server (0 turns one off),
      // so a stuck statement, lock wait or forgotten transaction frees its connection.
      statement_timeout_ms: Type.Integer({
        default: 30_000,
        minimum: 0,
        maximum: 86_400_000,
        description: 'an integer of milliseconds from 0 (no limit) to 86400000',
      }),
      lock_timeout_ms: Type.Integer({
        default: 2000,
        minimum: 0,
        maximum: 86_400_000,
        description: 'an integer of milliseconds from 0 (no limit) to 86400000',
      }),
      idle_in_transaction_timeout_ms: Type.Integer({
        default: 30_000,
        minimum: 0,
        maximum: 86_400_000,
        description: 'an integer of milliseconds from 0 (no limit) to 86400000',
      }),
    },
    { default: {}, additionalProperties: false },
  ),
  token_key: Type.Optional(
    Type.String({ minLength: 1, description: 'a secret of at least 32 bytes' }),
  ),
  token_expire_minutes: Type.Integer({
    default: DEFAULT_TOKEN_EXPIRE_MINUTES,
    minimum: 1,
    maximum: 525_600,
    description: 'an integer from 1 to 525600 (one year)',
  }),
  refresh_token_expire_days: Type.Integer({
    default: 14,
    minimum: 1,
    maximum: 3650,
    description: 'an integer from 1 to 3650',
  }),
  token_recheck_seconds: Type.Number({
    default: 1,
    minimum: 0,
    maximum: 300,
    description: 'a number of seconds from 0 to 300',
  }),
  passwords: Type.Object(
    {
      min_length: Type.Integer({
        default: 8,
        minimum: 1,
        maximum: 128,
        description: 'an integer from 1 to 128',
      }),
      upgrade_legacy: Type.Boolean({
        default: true,
        description: 'true or false',
      }),
      concurrency: Type.Optional(
        Type.Integer({ minimum: 1, maximum: 64, description: 'an integer from 1 to 64' }),
      ),
      duty_cycle: Type.Number({
        default: 0.25,
        minimum: 0.05,
        maximum: 1,
        description: 'a number from 0.05 to 1',
      }),
      nice: Type.Integer({
        default: 10,
        minimum: 0,
        maximum: 19,
        description: 'an integer from 0 to 19',
      }),
      max_queued: Type.Integer({
        default: 64,
        minimum: 0,
        maximum: 100_000,
        description: 'an integer from 0 to 100000',
      }),
    },
    { default: {}, additionalProperties: false },
  ),
  trust_proxy: Type.String({
    default: 'false',
    minLength: 1,
    description: TRUST_PROXY_FORMS,
  }),
  http: Type.Object(
    {
      // Node's own defaults (300 s for a request, none for a silent socket) let a client that
      // sends a byte now and then hold a connection for minutes: these bound every phase.
      request_timeout_ms: Type.Integer({
        default: 30_000,
        minimum: 1,
        maximum: 3_600_000,
        description: 'milliseconds from 1 to 3600000 to receive a whole request (408 after)',
      }),
      headers_timeout_ms: Type.Integer({
        default: 20_000,
        minimum: 1,
        maximum: 3_600_000,
        description: 'milliseconds from 1 to 3600000 to receive the request headers (408 after)',
      }),
      keep_alive_timeout_ms: Type.Integer({
        default: 72_000,
        minimum: 1,
        maximum: 3_600_000,
        description: 'milliseconds from 1 to 3600000 an idle keep-alive connection stays open',
      }),
      // Also what closes a connection that never sends a byte: Node stops timing such a one once
      // the headers timeout has passed, so this stays below it.
      connection_timeout_ms: Type.Integer({
        default: 15_000,
        minimum: 0,
        maximum: 3_600_000,
        description: 'milliseconds from 0 (never) to 3600000 of socket inactivity before closing',
      }),
      drain_ms: Type.Integer({
        default: 1_000,
        minimum: 0,
        maximum: 60_000,
        description: 'milliseconds from 0 to 60000 that shutdown answers 503 on open connections',
      }),
      shutdown_timeout_ms: Type.Integer({
        default: 10_000,
        minimum: 100,
        maximum: 600_000,
        description: 'milliseconds from 100 to 600000 for a graceful stop before exiting anyway',
      }),
    },
    { default: {}, additionalProperties: false },
  ),
  cors: Type.Object(
    {
      origins: Type.String({
        default: '',
        pattern: '^(|https?://[^,\\s/]+(\\s*,\\s*https?://[^,\\s/]+)*)$',
        description: 'empty (CORS off) or comma-separated origins such as https://app.example.com',
      }),
    },
    { default: {}, additionalProperties: false },
  ),
  host: Type.String({ default: '127.0.0.1', minLength: 1, description: 'a host name or address' }),
  port: Type.Integer({
    default: 8000,
    minimum: 0,
    maximum: 65_535,
    description: 'an integer from 0 to 65535',
  }),
  log_level: Type.Enum(LOG_LEVELS, {
    default: 'info',
    description: `one of ${LOG_LEVELS.join(', ')}`,
  }),
};

const SettingsSchema = Type.Object(SETTINGS, { additionalProperties: true });

export type Settings = Static<typeof SettingsSchema>;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Raised when the configuration cannot be used; `problems` has one line per bad variable. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadedSettings {
  settings: Settings;
  /** MYAPI_ variables that name no setting: likely typos, reported but not fatal. */
  unknown: string[];
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Values that win over both the environment and .env (command-line flags). */
  overrides?: Partial<Pick<Settings, 'host' | 'port'>>;
}

function readDotEnv(cwd: string): Record<string, string> {
  const path = join(cwd, '.env');
  if (!existsSync(path)) return {};
  return parseEnv(readFileSync(path, 'utf8')) as Record<string, string>;
}

/** MYAPI_DATABASE__DSN=x becomes { database: { dsn: 'x' } } and remembers the variable's name. */
function nest(vars: Record<string, string | undefined>): {
  tree: Record<string, unknown>;
  names: Map<string, string>;
} {
  const tree: Record<string, unknown> = {};
  const names = new Map<string, string>();
  for (const [name, value] of Object.entries(vars)) {
    if (value === undefined || !name.toUpperCase().startsWith(PREFIX)) continue;
    const path = name.slice(PREFIX.length).toLowerCase().split(NESTING);
    let node = tree;
    for (const part of path.slice(0, -1)) {
      const child = node[part];
      node[part] = typeof child === 'object' && child !== null ? child : {};
      node = node[part] as Record<string, unknown>;
    }
    node[path.at(-1) ?? ''] = value;
    names.set(path.join('.'), name);
  }
  return { tree, names };
}

/** The part of a JSON schema that names and describes settings. */
interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  description?: string;
}

const settingsTree = SettingsSchema as unknown as SchemaNode;

function knownPaths(schema: SchemaNode, prefix = ''): string[] {
  const properties = schema.properties;
  if (properties === undefined) return [prefix];
  return Object.entries(properties).flatMap(([key, child]) =>
    knownPaths(child, prefix === '' ? key : `${prefix}.${key}`),
  );
}

function schemaAt(path: string): SchemaNode | undefined {
  let schema: SchemaNode | undefined = settingsTree;
  for (const part of path.split('.')) schema = schema?.properties?.[part];
  return schema;
}

function variableName(path: string, names: Map<string, string>): string {
  return names.get(path) ?? PREFIX + path.toUpperCase().replaceAll('.', NESTING);
}

function tokenKeyProblems(settings: Settings, names: Map<string, string>): string[] {
  const name = variableName('token_key', names);
  const embedded = settings.database.dsn.startsWith('pglite:');
  if (settings.token_key === undefined) {
    return embedded
      ? []
      : [`${name}: required with a PostgreSQL server DSN (a random secret of at least 32 bytes)`];
  }
  const bytes = Buffer.byteLength(settings.token_key, 'utf8');
  return bytes >= 32 ? [] : [`${name}: must be at least 32 bytes long (got ${bytes})`];
}

const TRUST_PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** An address, a CIDR or one of proxy-addr's named ranges: what Fastify's trustProxy string takes. */
function isProxyAddress(part: string): boolean {
  if (TRUST_PROXY_RANGES.has(part)) return true;
  const [address = '', prefix, ...rest] = part.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * MYAPI_TRUST_PROXY as Fastify reads it. A hop count is refused: it trusts whatever address the
 * nearest peer claims, so a client that reaches the server directly could pick its own address
 * with X-Forwarded-For (and leave the per-address login throttle); Fastify 5.12 ignores it.
 */
function trustProxyProblems(settings: Settings, names: Map<string, string>): string[] {
  const value = settings.trust_proxy.trim();
  const name = variableName('trust_proxy', names);
  if (value === 'true' || value === 'false') return [];
  if (/^[0-9]+$/.test(value)) {
    return [
      `${name}: a number of proxy hops (${value}) is not supported, since a client that reaches the ` +
        'server directly could then choose its own address; give the addresses or CIDRs of the ' +
        'proxies (for example 10.0.0.0/8,loopback), or true when only proxies can reach the server',
    ];
  }
  const bad = value.split(',').filter((part) => !isProxyAddress(part.trim()));
  return bad.length === 0
    ? []
    : [`${name}: must be ${TRUST_PROXY_FORMS} (not an address: ${JSON.stringify(bad.join(','))})`];
}

/**
 * Reads MYAPI_* settings from the environment and ./.env (the environment wins), case-insensitively,
 * with `__` for nesting, and validates them. Throws ConfigError listing every bad variable.
 */
export function loadSettings(options: LoadOptions = {}): LoadedSettings {
  const env = options.env ?? process.env;
  const { tree, names } = nest({ ...readDotEnv(options.cwd ?? process.cwd()), ...env });
  const known = new Set(knownPaths(settingsTree));
  const unknown = [...names.entries()].filter(([path]) => !known.has(path)).map(([, n]) => n);
  // Command-line flags arrive with undefined for the ones not given.
  for (const [key, value] of Object.entries(options.overrides ?? {}) as [string, unknown][]) {
    if (value !== undefined) tree[key] = value;
  }

  const candidate = Value.Convert(SettingsSchema, Value.Default(SettingsSchema, tree));
  const problems = new Map<string, string>();
  for (const error of Value.Errors(SettingsSchema, candidate)) {
    const path = error.instancePath.replace(/^\//, '').replaceAll('/', '.');
    if (path === '' || problems.has(path) || !known.has(path)) continue;
    const description = schemaAt(path)?.description;
    const got = path.split('.').reduce<unknown>((node, part) => {
      return typeof node === 'object' && node !== null
        ? (node as Record<string, unknown>)[part]
        : undefined;
    }, candidate);
    const shown = path === 'token_key' ? '' : ` (got ${JSON.stringify(got)})`;
    problems.set(path, `${variableName(path, names)}: must be ${description ?? 'valid'}${shown}`);
  }
  if (problems.size > 0) throw new ConfigError([...problems.values()]);

  const settings = candidate as Settings;
  const keyProblems = [
    ...tokenKeyProblems(settings, names),
    ...trustProxyProblems(settings, names),
  ];
  if (keyProblems.length > 0) throw new ConfigError(keyProblems);
  return { settings, unknown };
}
