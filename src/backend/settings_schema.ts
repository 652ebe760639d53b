/** The settings myapi reads from MYAPI_ variables: names, types, defaults and the hint shown for a bad value. */
import { Type, type Static } from 'typebox';
import { DEFAULT_DSN, DEFAULT_TOKEN_EXPIRE_MINUTES } from '../const.js';
import { SCALE_OUT_SETTINGS } from './database/scale_out_settings.js';

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
      ...SCALE_OUT_SETTINGS,
    },
    { default: {}, additionalProperties: false },
  ),
  token_key: Type.Optional(
    Type.String({ minLength: 1, description: 'a secret of at least 32 bytes' }),
  ),
  // Without MYAPI_TOKEN_KEY tokens are signed by the key set in the database (EdDSA unless told).
  token_algorithm: Type.Optional(
    Type.Union([Type.Literal('EdDSA'), Type.Literal('ES256'), Type.Literal('HS256')], {
      description: 'EdDSA, ES256 or HS256',
    }),
  ),
  token_keys_secret: Type.Optional(
    Type.String({ minLength: 32, description: 'a secret of at least 32 bytes' }),
  ),
  token_keys_reload_seconds: Type.Integer({
    default: 60,
    minimum: 1,
    maximum: 3600,
    description: 'an integer of seconds from 1 to 3600',
  }),
  public_url: Type.Optional(
    Type.String({
      pattern: '^https?://[^/?#\\s]+(/[^?#\\s]*)?$',
      description: 'an absolute http(s) URL without query or fragment',
    }),
  ),
  // A JSON array, parsed and checked by backend/trusted_issuers.ts.
  trusted_issuers: Type.Optional(
    Type.String({ description: 'a JSON array of trusted issuers (docs/authentication.md)' }),
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
  // A retried refresh within this many seconds of the first use gets the same successor back
  // instead of ending the login (0: every second use ends it).
  refresh_reuse_seconds: Type.Integer({
    default: 0,
    minimum: 0,
    maximum: 300,
    description: 'an integer of seconds from 0 (no reuse) to 300',
  }),
  access_tokens: Type.Object(
    {
      // Personal access tokens: how long one may live, and whether one may never expire.
      max_lifetime_days: Type.Integer({
        default: 366,
        minimum: 1,
        maximum: 3650,
        description: 'an integer of days from 1 to 3650',
      }),
      allow_no_expiry: Type.Boolean({ default: false, description: 'true or false' }),
    },
    { default: {}, additionalProperties: false },
  ),
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
  audit: Type.Object(
    {
      // Security events older than this are deleted by the server (hourly) and `myapi audit prune`.
      retention_days: Type.Integer({
        default: 365,
        minimum: 1,
        maximum: 36_500,
        description: 'an integer of days from 1 to 36500',
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
  // Self-service accounts (services/accounts/): who may sign up, and how long their links last.
  signup: Type.Enum(['closed', 'open', 'invite'], {
    default: 'closed',
    description: 'closed, open or invite',
  }),
  accounts: Type.Object(
    {
      require_verified_email: Type.Boolean({ default: false, description: 'true or false' }),
      verify_token_hours: Type.Integer({
        default: 48,
        minimum: 1,
        maximum: 720,
        description: 'an integer of hours from 1 to 720',
      }),
      reset_token_minutes: Type.Integer({
        default: 30,
        minimum: 5,
        maximum: 1440,
        description: 'an integer of minutes from 5 to 1440',
      }),
      invitation_days: Type.Integer({
        default: 7,
        minimum: 1,
        maximum: 90,
        description: 'an integer of days from 1 to 90',
      }),
    },
    { default: {}, additionalProperties: false },
  ),
  mail: Type.Object(
    {
      smtp_url: Type.Optional(
        Type.String({
          pattern: '^smtps?://.+',
          description:
            'an smtp:// or smtps:// URL, e.g. smtps://user:password@mail.example.com:465',
        }),
      ),
      from: Type.String({
        default: 'myapi <no-reply@localhost>',
        minLength: 3,
        description: 'a sender address, e.g. "myapi <no-reply@example.com>"',
      }),
      templates_dir: Type.Optional(
        Type.String({ minLength: 1, description: 'a directory of mail templates' }),
      ),
      link_base_url: Type.Optional(
        Type.String({
          pattern: '^https?://[^\\s]+$',
          description: 'an http(s):// URL the links in mails start with',
        }),
      ),
      max_attempts: Type.Integer({
        default: 10,
        minimum: 1,
        maximum: 100,
        description: 'an integer from 1 to 100',
      }),
      retry_base_seconds: Type.Number({
        default: 30,
        minimum: 0.05,
        maximum: 3600,
        description: 'a number of seconds from 0.05 to 3600',
      }),
      poll_ms: Type.Integer({
        default: 1000,
        minimum: 10,
        maximum: 60_000,
        description: 'an integer of milliseconds from 10 to 60000',
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
