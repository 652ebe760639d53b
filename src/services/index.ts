import type { Database } from '../backend/database.js';
import { AuthService } from './auth.js';
import { HealthService } from './health.js';
import { MovieService } from './movies.js';
import { PasswordHasher, type HasherOptions } from './passwords.js';
import { TokenCodec } from './tokens.js';
import { UserService } from './users.js';

export interface ServiceOptions {
  tokenKey: string;
  tokenExpireMinutes: number;
  passwords: HasherOptions;
}

/** Every service of the application, built once and handed to the routers and the CLI. */
export function createServices(database: Database, options: ServiceOptions) {
  const context = { db: database.db, queryArrays: database.queryArrays };
  const hasher = new PasswordHasher(options.passwords);
  const users = new UserService(context, hasher);
  const tokens = new TokenCodec(options.tokenKey, options.tokenExpireMinutes);
  return {
    health: new HealthService(database),
    movies: new MovieService(context),
    users,
    auth: new AuthService(context, users, hasher, tokens),
  };
}

export type Services = ReturnType<typeof createServices>;
