import type { App } from '../../src/app.js';
import type { Token } from '../../src/schemas/auth.js';
import type { UserCreate } from '../../src/schemas/users.js';
import { accountOptions, createServices } from '../../src/services/index.js';
import { allowedScopes } from '../../src/services/scopes.js';
import { createTestApp, type DatabaseKind, type TestApp } from './databases.js';

export const USER = { name: 'test user', email: 'test_user@myapi.com', password: 'qwerty123' };
export const ADMIN = {
  name: 'admin user',
  email: 'admin@myapi.com',
  password: 'correct horse battery staple',
  is_superuser: true,
};

/** The account services on a test database, as the CLI builds them. */
export function accounts(t: TestApp) {
  return createServices(t.database, { accounts: accountOptions(t.settings) });
}

/** Creates a user through the services, as the CLI does (the policy warns, never refuses). */
export async function createUser(t: TestApp, user: UserCreate) {
  return accounts(t).users.createUser(user);
}

/** Creates the tutorial's user and demo movies through the services, as the CLI does. */
export async function seedTutorial(t: TestApp): Promise<void> {
  await createServices(t.database).movies.seedDemo();
  await createUser(t, USER);
}

/** POST /token with a form; the whole response. */
export function tokenRequest(app: App, fields: Record<string, string>) {
  return app.inject({ method: 'POST', url: '/token', ...form(fields) });
}

/** The password grant's token response; throws unless it is a 200. */
export async function loginTokens(
  app: App,
  username = USER.email,
  password = USER.password,
  scope?: string,
): Promise<Token> {
  const response = await tokenRequest(app, {
    username,
    password,
    ...(scope === undefined ? {} : { scope }),
  });
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.body}`);
  return response.json<Token>();
}

export async function login(
  app: App,
  username = USER.email,
  password = USER.password,
): Promise<string> {
  return (await loginTokens(app, username, password)).access_token;
}

/** An Authorization header of a superuser (movies:write, users:admin), created on first use. */
export async function adminAuthorization(t: TestApp): Promise<string> {
  const { users } = accounts(t);
  try {
    await users.getByEmail(ADMIN.email);
  } catch {
    await users.createUser(ADMIN);
  }
  return `Bearer ${await login(t.app, ADMIN.email, ADMIN.password)}`;
}

export function form(fields: Record<string, string>) {
  return {
    payload: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  };
}

/** An app with the tutorial's user and movies, and that user's Authorization header. */
export async function tutorialApp(
  kind: DatabaseKind,
  options: Parameters<typeof createTestApp>[1] = {},
): Promise<{ t: TestApp; authorization: string }> {
  const t = await createTestApp(kind, options);
  await seedTutorial(t);
  return { t, authorization: `Bearer ${await login(t.app)}` };
}

/** An Authorization header allowed to write movies (movies:write): a superuser's. */
export function writerAuthorization(t: TestApp): Promise<string> {
  return adminAuthorization(t);
}

/**
 * What a password grant without `scope` gives (services/scopes.ts): a user every scope the
 * services give every user (movies:read, and each generated service's read scope), a superuser
 * every scope. Tests compare with these, so a new service changes no test.
 */
export const USER_SCOPES = allowedScopes(false).join(' ');
export const ALL_SCOPES = allowedScopes(true).join(' ');
