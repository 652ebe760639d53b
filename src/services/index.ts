import type { AppDb } from '../backend/database.js';
import { AuthService } from './auth.js';
import { MovieService } from './movies.js';
import { PasswordHasher } from './passwords.js';
import { TokenCodec } from './tokens.js';
import { UserService } from './users.js';

export interface ServiceOptions {
  tokenKey: string;
  tokenExpireMinutes: number;
}

/** Every service of the application, built once and handed to the routers and the CLI. */
export function createServices(db: AppDb, options: ServiceOptions) {
  const context = { db };
  const hasher = new PasswordHasher();
  const users = new UserService(context, hasher);
  const tokens = new TokenCodec(options.tokenKey, options.tokenExpireMinutes);
  return {
    movies: new MovieService(context),
    users,
    auth: new AuthService(context, users, hasher, tokens),
  };
}

export type Services = ReturnType<typeof createServices>;
