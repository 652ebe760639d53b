import type { App } from '../../src/app.js';
import { MovieService } from '../../src/services/movies.js';
import { PasswordHasher } from '../../src/services/passwords.js';
import { UserService } from '../../src/services/users.js';
import { createTestApp, type DatabaseKind, type TestApp } from './databases.js';

export const USER = { name: 'test user', email: 'test_user@myapi.com', password: 'qwerty123' };

/** Creates the tutorial's user and demo movies through the services, as the CLI does. */
export async function seedTutorial(t: TestApp): Promise<void> {
  await new MovieService({ db: t.database.db }).seedDemo();
  await new UserService({ db: t.database.db }, new PasswordHasher()).createUser(USER);
}

export async function login(
  app: App,
  username = USER.email,
  password = USER.password,
): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/token',
    payload: new URLSearchParams({ username, password }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.body}`);
  return response.json<{ access_token: string }>().access_token;
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
): Promise<{ t: TestApp; authorization: string }> {
  const t = await createTestApp(kind);
  await seedTutorial(t);
  return { t, authorization: `Bearer ${await login(t.app)}` };
}

/**
 * The Authorization header of a user allowed to write movies (movies:write). Every write test
 * logs in through here, so the one place that knows who may write is this function.
 */
export async function writerAuthorization(t: TestApp): Promise<string> {
  return `Bearer ${await login(t.app)}`;
}
