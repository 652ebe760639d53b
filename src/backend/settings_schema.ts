/** The settings myapi reads from MYAPI_ variables: names, types, defaults and the hint shown for a bad value. */
import { Type, type Static } from 'typebox';
import { DEFAULT_DSN, DEFAULT_TOKEN_EXPIRE_MINUTES } from '../const.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const TRUST_PROXY_FORMS =
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
  // Prometheus metrics (backend/metrics/): off unless a port or a token is set.
  metrics: Type.Object(
    {
      port: Type.Optional(
        Type.Integer({ minimum: 0, maximum: 65_535, description: 'an integer from 0 to 65535' }),
      ),
      host: Type.String({
        default: '127.0.0.1',
        minLength: 1,
        description: 'a host name or address',
      }),
      token: Type.Optional(
        Type.String({
          minLength: 16,
          pattern: '^[A-Za-z0-9._~+/=-]+$',
          description: 'a secret of at least 16 characters from A-Z a-z 0-9 . _ ~ + / = -',
        }),
      ),
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

export const SettingsSchema = Type.Object(SETTINGS, { additionalProperties: true });

export type Settings = Static<typeof SettingsSchema>;
export type LogLevel = (typeof LOG_LEVELS)[number];
