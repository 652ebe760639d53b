/** createServices: the one way every entry point (server, CLI, tests) builds the services. */
import { availableParallelism } from 'node:os';
import type { Settings } from '../backend/config.js';
import type { Database } from '../backend/database.js';
import { loadAwareDutyCycle } from '../backend/limiter.js';
import { AuthService } from './auth.js';
import type { ServiceContext } from './base.js';
import { HealthService } from './health.js';
import type { ServiceMetrics } from './metrics.js';
import { MovieService } from './movies/index.js';
import { PasswordHasher, type HasherOptions } from './passwords.js';
import { PasswordPolicy } from './password_policy.js';
import { SessionService } from './sessions.js';
import { LoginThrottle } from './throttle.js';
import { TokenCodec } from './tokens.js';
import { UserService } from './users.js';

export interface AccountOptions {
  refreshExpireDays: number;
  /** Seconds a process may trust a session's state before reading it again. */
  recheckSeconds: number;
  passwordMinLength: number;
  passwords: HasherOptions;
}

/** What signs and checks access tokens: only the server needs it (the CLI issues none). */
export interface TokenOptions {
  key: string;
  expireMinutes: number;
}

/** The account settings as the services take them. */
export function accountOptions(settings: Settings): AccountOptions {
  return {
    refreshExpireDays: settings.refresh_token_expire_days,
    recheckSeconds: settings.token_recheck_seconds,
    passwordMinLength: settings.passwords.min_length,
    passwords: {
      upgradeLegacy: settings.passwords.upgrade_legacy,
      // Half the cores (at least one) hash; the rest keep serving reads and the database.
      concurrency:
        settings.passwords.concurrency ?? Math.max(1, Math.floor(availableParallelism() / 2)),
      maxQueued: settings.passwords.max_queued,
      // Hashing yields to the requests this process serves (backend/limiter.ts).
      dutyCycle: loadAwareDutyCycle(settings.passwords.duty_cycle),
    },
  };
}

/** The services that need no settings: the catalogue and readiness. */
export interface CatalogueServices {
  health: HealthService;
  movies: MovieService;
}

/** With account settings: users and their sessions too (the CLI's account commands). */
export interface AccountServices extends CatalogueServices {
  users: UserService;
  sessions: SessionService;
}

/** With a token key as well: everything, logins included (the server). */
export interface Services extends AccountServices {
  auth: AuthService;
}

/**
 * The services of the application over one database, built once and handed to the routers or
 * the CLI. Each level of options adds the services that need them, so a command that issues no
 * token needs no token key.
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
  const catalogue = { health: new HealthService(database), movies: new MovieService(context) };
  if (options === undefined) return catalogue;
  const { accounts, tokens, metrics } = options;
  const hasher = new PasswordHasher({ ...accounts.passwords, metrics });
  const sessions = new SessionService(context, {
    refreshLifetimeSeconds: accounts.refreshExpireDays * 86_400,
    recheckSeconds: accounts.recheckSeconds,
    metrics,
  });
  const policy = new PasswordPolicy({ minLength: accounts.passwordMinLength });
  const users = new UserService(context, hasher, policy, sessions);
  if (tokens === undefined) return { ...catalogue, users, sessions };
  const codec = new TokenCodec(tokens.key, tokens.expireMinutes);
  const throttle = new LoginThrottle(context);
  const auth = new AuthService(context, users, hasher, codec, sessions, throttle, metrics);
  return { ...catalogue, users, sessions, auth };
}
