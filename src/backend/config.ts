/** Loads and validates the settings from the environment and .env, one line per problem. */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { Value } from 'typebox/value';
import { SettingsSchema, TRUST_PROXY_FORMS, type Settings } from './settings_schema.js';
import { parseTrustedIssuers } from './trusted_issuers.js';

export type { LogLevel, Settings } from './settings_schema.js';

const PREFIX = 'MYAPI_';
const NESTING = '__';

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

/** Settings whose value an error message never shows. */
const SECRET_SETTINGS = new Set([
  'token_key',
  'token_keys_secret',
  'mail.smtp_url',
  'metrics.token',
]);

function tokenKeyProblems(settings: Settings, names: Map<string, string>): string[] {
  const name = variableName('token_key', names);
  const embedded = settings.database.dsn.startsWith('pglite:');
  if (settings.token_key === undefined) {
    if (settings.token_algorithm === 'HS256') {
      return [`${variableName('token_algorithm', names)}: HS256 needs ${name}`];
    }
    return embedded || settings.token_keys_secret !== undefined
      ? []
      : [
          `${variableName('token_keys_secret', names)}: required with a PostgreSQL server DSN ` +
            `unless ${name} is set (a random secret of at least 32 bytes that encrypts the signing keys)`,
        ];
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

function trustedIssuerProblems(settings: Settings, names: Map<string, string>): string[] {
  const parsed = parseTrustedIssuers(settings.trusted_issuers);
  return typeof parsed === 'string' ? [`${variableName('trusted_issuers', names)}: ${parsed}`] : [];
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
    // Secrets are never echoed: the signing key, and the SMTP URL, which may hold a password.
    const shown = SECRET_SETTINGS.has(path) ? '' : ` (got ${JSON.stringify(got)})`;
    problems.set(path, `${variableName(path, names)}: must be ${description ?? 'valid'}${shown}`);
  }
  if (problems.size > 0) throw new ConfigError([...problems.values()]);

  const settings = candidate as Settings;
  const keyProblems = [
    ...tokenKeyProblems(settings, names),
    ...trustProxyProblems(settings, names),
    ...trustedIssuerProblems(settings, names),
  ];
  if (keyProblems.length > 0) throw new ConfigError(keyProblems);
  return { settings, unknown };
}
