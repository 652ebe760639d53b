import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { USER } from './http.js';
import { PROCESS_TIMEOUT_MS, scaled } from './timeouts.js';

/**
 * `myapi` as a user runs it: `node dist/cli.js ...` subprocesses in directories of their own,
 * servers driven over a real socket with fetch and stopped with signals.
 */

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
export { USER } from './http.js';

/** `myapi create-user` for the tutorial's user, as the tutorial runs it. */
export const CREATE_USER_ARGS = [
  'create-user',
  '--name',
  USER.name,
  '--email',
  USER.email,
  '--password',
  USER.password,
];
export const WRONG_PASSWORD = 'not-the-password-42';
export const TUTORIAL_MOVIES = [
  { movie_id: 1, title: 'The Shawshank Redemption', released: 1994, rating: 9.2 },
  { movie_id: 3, title: 'The Dark Knight', released: 2008, rating: 9 },
];
/** The server's own shutdown grace (src/server.ts): a stop must end within it. */
export const SHUTDOWN_GRACE_MS = 10_000;
/** How long a test waits for a signalled server to exit. */
export const STOP_TIMEOUT_MS = scaled(SHUTDOWN_GRACE_MS);
export { PROCESS_TIMEOUT_MS, scaled, TEST_TIMEOUT_MS } from './timeouts.js';

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^myapi_/i.test(name)) env[name] = value;
  }
  return { ...env, ...extra };
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => {
    probe.close(() => {
      resolve();
    });
  });
  return port;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const running = new Set<ChildProcessWithoutNullStreams>();

/** A `myapi` subprocess whose output is kept for the assertions. */
export class Proc {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<Exit>;
  stdout = '';
  stderr = '';
  private readonly listeners = new Set<() => void>();

  constructor(args: string[], cwd: string, env: Record<string, string>, input = '') {
    this.child = spawn(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(env) });
    running.add(this.child);
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      for (const listener of this.listeners) listener();
    });
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      for (const listener of this.listeners) listener();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        running.delete(this.child);
        for (const listener of this.listeners) listener();
        resolve({ code, signal });
      });
    });
    this.child.stdin.on('error', () => undefined);
    this.child.stdin.end(input);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  show(): string {
    return `--- stdout\n${this.stdout}--- stderr\n${this.stderr}`;
  }

  /** Complete stdout lines parsed as JSON; a line that is not JSON fails the test. */
  logLines(): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          assert.fail(`stdout line is not JSON: ${line}`);
        }
      });
  }

  /**
   * Resolves when the output satisfies `done` (checked on each chunk of stdout or stderr), fails
   * on exit or timeout.
   */
  // A safety net, not a timing: a worker starting on a loaded 2-core machine can take 10 s.
  waitForOutput(done: () => boolean, what: string, timeoutMs = PROCESS_TIMEOUT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (error?: Error) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        if (done()) finish();
        else if (!this.alive) finish(new Error(`exited while waiting for ${what}\n${this.show()}`));
      };
      const timer = setTimeout(() => {
        finish(new Error(`timed out waiting for ${what}\n${this.show()}`));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  async finished(timeoutMs = PROCESS_TIMEOUT_MS): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`did not exit within ${timeoutMs} ms\n${this.show()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal and waits for the exit, which must come within the shutdown grace. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    this.child.kill(signal);
    return this.finished(STOP_TIMEOUT_MS);
  }
}

/** `node dist/cli.js ...` to completion. */
export async function runCli(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ exit: Exit; proc: Proc }> {
  const proc = new Proc(args, cwd, env);
  return { exit: await proc.finished(), proc };
}

export class Server extends Proc {
  readonly url: string;

  constructor(cwd: string, port: number, env: Record<string, string> = {}, args: string[] = []) {
    super(['serve', ...args], cwd, { ...env, MYAPI_PORT: String(port) });
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Polls GET /ready until 200. */
  async ready(timeoutMs = PROCESS_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.alive) assert.fail(`the server exited before it was ready\n${this.show()}`);
      try {
        const response = await fetch(`${this.url}/ready`);
        await response.arrayBuffer();
        if (response.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) assert.fail(`the server was not ready in time\n${this.show()}`);
      await delay(100);
    }
  }

  /**
   * Asserts that no log line carries one of the secrets, once the lines of the requests so far
   * are out: the server gathers them for up to 10 ms per write (backend/logging.ts).
   */
  async assertLogsClean(secrets: readonly string[]): Promise<void> {
    await delay(100);
    const records = this.logLines();
    assert.ok(records.length > 0, 'the server logged nothing on stdout');
    for (const secret of [...secrets, 'Bearer ey']) {
      assert.ok(secret !== '');
      assert.ok(!this.stdout.includes(secret), `a log line contains the secret ${secret}`);
    }
  }
}

export async function startServer(
  cwd: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<Server> {
  const server = new Server(cwd, await freePort(), env, args);
  await server.ready();
  return server;
}

export interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
}

export function postToken(url: string, username: string, password: string): Promise<Response> {
  return fetch(`${url}/token`, {
    method: 'POST',
    body: new URLSearchParams({ username, password }),
  });
}

export async function login(url: string): Promise<string> {
  const response = await postToken(url, USER.email, USER.password);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.equal(response.headers.get('cache-control'), 'no-store');
  const body = JSON.parse(text) as TokenBody;
  assert.equal(typeof body.access_token, 'string');
  assert.ok(body.access_token.length > 20);
  assert.equal(body.token_type, 'bearer');
  assert.equal(typeof body.expires_in, 'number');
  assert.ok(body.expires_in > 0);
  return body.access_token;
}

export async function newMovies(
  url: string,
  token: string,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${url}/movies/new?year=1990&rating=9`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: await response.json() };
}

export async function createUser(cwd: string, env: Record<string, string> = {}): Promise<void> {
  const { exit, proc } = await runCli(CREATE_USER_ARGS, cwd, env);
  assert.equal(exit.code, 0, proc.show());
}

const tempDirs: string[] = [];

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'myapi-serve-'));
  tempDirs.push(dir);
  return dir;
}

after(() => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  env?: Record<string, string>;
  /** Written to stdin, which is then closed; without it stdin is closed at once. */
  input?: string;
  /** Killed with SIGKILL after this long (default PROCESS_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** `node dist/cli.js ...` with its output as text and stdin fed from `input`. */
export function runCommand(args: string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd,
      env: cleanEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? PROCESS_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** The non-blank lines of a command's output. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}
