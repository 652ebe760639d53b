/** createServices: the one way every entry point (server, CLI, tests) builds the services. */
import { availableParallelism } from 'node:os';
import type { Settings } from '../backend/config.js';
import type { Database } from '../backend/database.js';
import { loadAwareConcurrency, loadAwareDutyCycle } from '../backend/limiter.js';
import { AccessTokenService, type AccessTokenOptions } from './access_tokens.js';
import { AuditService } from './audit/index.js';
import {
  createSelfServices,
  selfServiceSettings,
  type SelfServices,
  type SelfServiceSettings,
} from './accounts/index.js';
import { AuthService } from './auth.js';
import type { ServiceContext } from './base.js';
import type { AccountDeps, ServiceDefinition, ServiceDeps } from './definition.js';
import { HealthService } from './health.js';
import { IntrospectionService } from './introspection.js';
import { MfaService, SecretBox } from './mfa/index.js';
import type { ServiceMetrics } from './metrics.js';
import { PasswordHasher, type HasherOptions } from './passwords.js';
import { PasswordPolicy } from './password_policy.js';
import { serviceDefinitions } from './registry.js';
import { SessionService } from './sessions.js';
import { LoginThrottle } from './throttle.js';
import { TokenCodec, type TokenKeys } from './tokens.js';
import { UserService } from './users.js';
import { ExternalIssuers, localUserFinder } from './keys/external.js';
import type { TrustedIssuer } from '../backend/trusted_issuers.js';

export interface AccountOptions {
  refreshExpireDays: number;
  /** Seconds a process may trust a session's state before reading it again. */
  recheckSeconds: number;
  /** Seconds within which a used refresh token may be retried. */
  refreshReuseSeconds: number;
  accessTokens: AccessTokenOptions;
  passwordMinLength: number;
  passwords: HasherOptions;
  /** Days the audit log keeps an event (MYAPI_AUDIT__RETENTION_DAYS). */
  auditRetentionDays: number;
  /** Sign-up, email verification and password reset (services/accounts/). */
  selfService: SelfServiceSettings;
}

/** What signs and checks access tokens: only the server needs it (the CLI issues none). */
export interface TokenOptions {
  /** An HS256 secret (HmacKeys) or the key set (KeyRing, services/signing_keys.ts). */
  keys: TokenKeys;
  expireMinutes: number;
  /** Other issuers whose tokens are accepted (MYAPI_TRUSTED_ISSUERS). */
  trustedIssuers?: readonly TrustedIssuer[];
  /** What seals the secrets the server keeps (TOTP): MYAPI_TOKEN_KEY, else the key set's secret. */
  sealingSecret: string;
}

/** The account settings as the services take them. */
export function accountOptions(settings: Settings): AccountOptions {
  return {
    refreshExpireDays: settings.refresh_token_expire_days,
    recheckSeconds: settings.token_recheck_seconds,
    refreshReuseSeconds: settings.refresh_reuse_seconds,
    accessTokens: {
      maxLifetimeDays: settings.access_tokens.max_lifetime_days,
      allowNoExpiry: settings.access_tokens.allow_no_expiry,
    },
    passwordMinLength: settings.passwords.min_length,
    auditRetentionDays: settings.audit.retention_days,
    passwords: {
      upgradeLegacy: settings.passwords.upgrade_legacy,
      // While nothing else is served, two hashes per core: a slot that one hash frees waits for
      // the next login's statements, and the second keeps the core busy meanwhile. Under load,
      // half of the cores (at least one), and the rest keep serving reads and the database.
      concurrency:
        settings.passwords.concurrency ??
        loadAwareConcurrency(
          2 * availableParallelism(),
          Math.max(1, Math.floor(availableParallelism() / 2)),
        ),
      maxQueued: settings.passwords.max_queued,
      // Hashing yields to the requests this process serves (backend/limiter.ts).
      dutyCycle: loadAwareDutyCycle(settings.passwords.duty_cycle),
    },
    selfService: selfServiceSettings(settings),
  };
}

type Registered = (typeof serviceDefinitions)[number];

/** The registered services of one kind, by name: `services.movies` is a MovieService. */
type ServicesOf<Definition extends Registered> = {
  [D in Definition as D['name']]: ReturnType<D['create']>;
};

/** The services that need no settings: readiness and every service that needs only the database. */
export type CatalogueServices = { health: HealthService } & ServicesOf<
  Extract<Registered, { needs: 'database' }>
>;

/** With account settings: users and their sessions too (the CLI's account commands). */
export type AccountServices = CatalogueServices & {
  users: UserService;
  sessions: SessionService;
  accessTokens: AccessTokenService;
  audit: AuditService;
  /** Two-factor authentication; without a token key (the CLI) it can only reset factors. */
  mfa: MfaService;
  selfService: SelfServices;
  /** The login throttle, which a stopping server lets finish its attempts (`settled`). */
  throttle: LoginThrottle;
} & ServicesOf<Extract<Registered, { needs: 'accounts' }>>;

/** With a token key as well: everything, logins included (the server). */
export type Services = AccountServices & {
  auth: AuthService;
  introspection: IntrospectionService;
};

/** The registered services the dependencies allow: all of them once accounts are there. */
function buildRegistered(deps: ServiceDeps): ServicesOf<Extract<Registered, { needs: 'database' }>>;
function buildRegistered(deps: AccountDeps): ServicesOf<Registered>;
function buildRegistered(deps: ServiceDeps | AccountDeps) {
  const built: Record<string, unknown> = {};
  for (const definition of serviceDefinitions as readonly ServiceDefinition[]) {
    if (definition.needs === 'database') built[definition.name] = definition.create(deps);
    else if ('users' in deps) built[definition.name] = definition.create(deps);
  }
  return built as ServicesOf<Registered>;
}

/**
 * The services of the application over one database, built once and handed to the routers or
 * the CLI: the core ones (readiness, accounts, logins) and every registered one
 * (services/registry.ts). Each level of options adds the services that need them, so a command
 * that issues no token needs no token key.
 */
export function createServices(
  database: Database,
  options: { accounts: AccountOptions; tokens: TokenOptions; metrics?: ServiceMetrics },
): Services;
export function createServices(
  database: Database,
  options: { accounts: AccountOptions },
): AccountServices;
export function createServices(database: Database): CatalogueServices;
export function createServices(
  database: Database,
  options?: { accounts: AccountOptions; tokens?: TokenOptions; metrics?: ServiceMetrics },
): CatalogueServices | AccountServices | Services {
  const context: ServiceContext = database;
  const health = new HealthService(database);
  if (options === undefined) {
    return { health, ...buildRegistered({ context }) };
  }
  const { accounts, tokens, metrics } = options;
  const hasher = new PasswordHasher({ ...accounts.passwords, metrics });
  const sessions = new SessionService(context, {
    refreshLifetimeSeconds: accounts.refreshExpireDays * 86_400,
    recheckSeconds: accounts.recheckSeconds,
    reuseSeconds: accounts.refreshReuseSeconds,
    metrics,
  });
  const policy = new PasswordPolicy({ minLength: accounts.passwordMinLength });
  const users = new UserService(context, hasher, policy, sessions);
  const accessTokens = new AccessTokenService(context, sessions, accounts.accessTokens);
  const audit = new AuditService(context, accounts.auditRetentionDays);
  const throttle = new LoginThrottle(context);
  const selfService = createSelfServices(context, accounts.selfService, {
    hasher,
    policy,
    sessions,
    throttle,
  });
  // `users` is registered (services/users_definition.ts): the registry hands back this one.
  const core = {
    health,
    sessions,
    accessTokens,
    audit,
    selfService,
    throttle,
    ...buildRegistered({ context, users, sessions }),
  };
  if (tokens === undefined) return { ...core, mfa: new MfaService(context) };
  const mfa = new MfaService(context, new SecretBox(tokens.sealingSecret));
  const external =
    tokens.trustedIssuers === undefined || tokens.trustedIssuers.length === 0
      ? undefined
      : new ExternalIssuers(tokens.trustedIssuers, localUserFinder(users));
  const codec = new TokenCodec(tokens.keys, tokens.expireMinutes, external);
  const auth = new AuthService(
    context,
    users,
    hasher,
    codec,
    sessions,
    throttle,
    accessTokens,
    mfa,
    { requireVerifiedEmail: accounts.selfService.requireVerifiedEmail },
    metrics,
  );
  const introspection = new IntrospectionService(context, codec, sessions, accessTokens);
  return { ...core, mfa, auth, introspection };
}
