import type { Database } from '../backend/database.js';
import { AuthService } from './auth.js';
import type { ServiceContext } from './base.js';
import { HealthService } from './health.js';
import { MovieService } from './movies.js';
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

export interface ServiceOptions extends AccountOptions {
  tokenKey: string;
  tokenExpireMinutes: number;
}

/** Users and their sessions: what the CLI's account commands need (no token key). */
export function createAccountServices(context: ServiceContext, options: AccountOptions) {
  const hasher = new PasswordHasher(options.passwords);
  const sessions = new SessionService(context, {
    refreshLifetimeSeconds: options.refreshExpireDays * 86_400,
    recheckSeconds: options.recheckSeconds,
  });
  const policy = new PasswordPolicy({ minLength: options.passwordMinLength });
  return { hasher, sessions, users: new UserService(context, hasher, policy, sessions) };
}

/** Every service of the application, built once and handed to the routers and the CLI. */
export function createServices(database: Database, options: ServiceOptions) {
  const context: ServiceContext = database;
  const { hasher, sessions, users } = createAccountServices(context, options);
  const tokens = new TokenCodec(options.tokenKey, options.tokenExpireMinutes);
  return {
    health: new HealthService(database),
    movies: new MovieService(context),
    users,
    sessions,
    auth: new AuthService(context, users, hasher, tokens, sessions, new LoginThrottle(context)),
  };
}

export type Services = ReturnType<typeof createServices>;
