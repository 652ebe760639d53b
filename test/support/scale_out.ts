// What the scale-out suites (PgBouncer, instances, replicas) share: the CLI, logins and movie
// requests over HTTP, and waiting for a change made elsewhere to reach a server.
import assert from 'node:assert/strict';
import { TOKEN_KEY } from './databases.js';
import { delay, postToken, runCli, type TokenBody } from './process.js';
import { scaled } from './timeouts.js';

export { TOKEN_KEY };

/** `myapi <args>` that must succeed; returns its stdout. */
export async function cli(args: string[], cwd: string, env: Record<string, string>) {
  const { exit, proc } = await runCli(args, cwd, env);
  assert.equal(exit.code, 0, `myapi ${args.join(' ')}\n${proc.show()}`);
  return proc.stdout;
}

/** Creates a user with the CLI (a superuser with `admin`); returns the login. */
export async function newUser(
  cwd: string,
  env: Record<string, string>,
  email: string,
  admin = false,
): Promise<{ email: string; password: string }> {
  const password = `pw-${email}-long-enough`;
  const args = ['create-user', '--name', email, '--email', email, '--password', password];
  await cli(admin ? [...args, '--admin'] : args, cwd, env);
  return { email, password };
}

export async function tokenFor(url: string, user: { email: string; password: string }) {
  const response = await postToken(url, user.email, user.password);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text) as TokenBody & { refresh_token: string };
}

export async function bearerGet(url: string, token: string) {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text };
}

export async function bearerSend(method: string, url: string, token: string, body: unknown) {
  const response = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text };
}

/**
 * Polls `url` with the token until it answers `status`; returns the milliseconds it took.
 * Fails after `withinMs` (a bound the test states, scaled for a busy machine).
 */
export async function msUntilStatus(
  url: string,
  token: string,
  status: number,
  withinMs: number,
): Promise<number> {
  const started = Date.now();
  const deadline = started + scaled(withinMs);
  for (;;) {
    const answer = await bearerGet(url, token);
    if (answer.status === status) return Date.now() - started;
    if (Date.now() > deadline) {
      assert.fail(`${url} still answers ${answer.status} after ${withinMs} ms: ${answer.text}`);
    }
    await delay(50);
  }
}
