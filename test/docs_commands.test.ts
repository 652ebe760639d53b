/** Runs every ```sh command of README.md and docs/*.md as written, in order, so the docs cannot drift. */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServerDatabase } from './support/databases.js';
import { cleanEnv, delay, freePort, tempDir } from './support/process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The pages in the order their sessions build on each other: README.md leaves a server running on
 * the embedded database with the tutorial's user, api.md adds a superuser, and so on.
 */
const PAGES = [
  'README.md',
  'docs/api.md',
  'docs/authentication.md',
  'docs/cli.md',
  'docs/configuration.md',
  'docs/operations.md',
  'docs/development.md',
];

/** Documented commands the test does not run, each with the reason. */
const NOT_RUN = new Map<string, string>([
  ['npm test', 'this test is part of `npm test`: it would run itself'],
  ['npm run check', '`npm test` runs it before the suites, this test among them'],
  [
    'npm run db:generate -- --name reviews',
    'writes a migration into drizzle/ for a model that does not exist',
  ],
  [
    'CI=true node --import tsx --test test/movies.test.ts',
    'one suite of `npm test`, which runs it anyway',
  ],
  ['TEST_PG=off npm test', 'the whole suite again, without the PostgreSQL half'],
  ['npx pino-pretty < server.log', 'reads a log file of the reader’s own server'],
  ['npm link', 'installs a global command on the machine'],
  [
    'bin/myapi new-service directors name:text born:int? country:text? --id serial',
    'writes a service into this checkout: test/generator.test.ts runs it in a copy of the project',
  ],
]);

/** The docs' own server address and database, replaced by ones no parallel run can share. */
const DOC_URL = 'http://127.0.0.1:8000';
const DOC_DSN = 'postgresql://postgres@127.0.0.1:5432/myapi';
const COMMAND_TIMEOUT_MS = 120_000;
/** `NAME=value` alone (not `NAME=value command`): later commands of the page see the variable. */
const ASSIGNMENT = /^(?:export )?([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|\$\(.*\)|[^\s'"$()]+)$/s;

interface Command {
  page: string;
  line: number;
  text: string;
  /** Output shown as `# ` lines under the command; `...` stands for any text. */
  expected: string[];
}

/** The commands of a page's ```sh blocks: `\` continues a line, `# ` lines right under show output. */
export function extractCommands(page: string, markdown: string): Command[] {
  const commands: Command[] = [];
  const lines = markdown.split('\n');
  let inSh = false;
  let fence = false;
  let current: Command | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (/^```[\w-]*$/.test(line)) {
      inSh = !fence && line === '```sh';
      fence = !fence;
      current = undefined;
      continue;
    }
    if (!inSh) continue;
    if (line.trim() === '') {
      current = undefined;
    } else if (line.startsWith('#')) {
      assert.ok(current, `${page}:${i + 1}: a # line shows output, so it must follow a command`);
      current.expected.push(line.replace(/^# ?/, ''));
    } else {
      let text = line;
      while (text.endsWith('\\') && i + 1 < lines.length) text += `\n${lines[++i] ?? ''}`;
      current = { page, line: i + 1, text, expected: [] };
      commands.push(current);
    }
  }
  return commands;
}

interface Ran {
  code: number | null;
  stdout: string;
  output: string;
}

function runShell(script: string, cwd: string, env: NodeJS.ProcessEnv, merge = true): Promise<Ran> {
  return new Promise((resolve, reject) => {
    // With 2>&1 for the whole script, stdout and stderr arrive in the order they were written.
    const child = spawn('sh', ['-c', merge ? `exec 2>&1\n${script}` : script], { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, output: stdout + stderr });
    });
    child.stdin.end();
  });
}

/** Whether each shown line matches a line of the output, in order (`...` matches anything). */
function matchesShown(expected: string[], output: string): boolean {
  const actual = output.replaceAll('\r', '').split('\n');
  let next = 0;
  for (const shown of expected) {
    const pattern = new RegExp(
      `^${shown
        .split('...')
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    while (next < actual.length && !pattern.test(actual[next] ?? '')) next++;
    if (next === actual.length) return false;
    next++;
  }
  return true;
}

/** A server started by `npm start` or `bin/myapi serve`, in a process group of its own. */
class BackgroundServer {
  output = '';
  running = true;
  readonly exited: Promise<[number | null, string | null]>;
  private readonly pid: number;

  constructor(script: string, cwd: string, env: NodeJS.ProcessEnv) {
    const child = spawn('sh', ['-c', `exec 2>&1\n${script}`], { cwd, env, detached: true });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    child.stdin.end();
    this.pid = child.pid ?? -1;
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.running = false;
        resolve([code, signal]);
      }),
    );
  }

  async ready(url: string): Promise<void> {
    const deadline = Date.now() + COMMAND_TIMEOUT_MS;
    while (Date.now() < deadline && this.running) {
      const status = await fetch(`${url}/ready`).then(
        (response) => response.status,
        () => 0,
      );
      if (status === 200) return;
      await delay(200);
    }
    assert.fail(`the server did not get ready\n${this.output}`);
  }

  /**
   * SIGTERM to the whole group, as Ctrl-C or systemd send it, or to the process alone: either
   * way a graceful stop. Whatever is left of the group is killed, pass or fail.
   */
  async stop(group = true): Promise<[number | null, string | null]> {
    try {
      process.kill(group ? -this.pid : this.pid, 'SIGTERM');
      const exit = await this.exited;
      // With npm start the group's shell dies at once, while the server still drains its open
      // keep-alive connections (MYAPI_HTTP__DRAIN_MS) before it logs `stopped`.
      const deadline = Date.now() + 15_000;
      while (!this.output.includes('"msg":"stopped"') && Date.now() < deadline) await delay(50);
      await delay(200); // the last lines may still be in the pipe
      assert.match(this.output, /"msg":"stopped"/, `no graceful stop\n${this.output}`);
      return exit;
    } finally {
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        // nothing was left behind
      }
    }
  }
}

/** The reader's checkout: the built project, linked into a fresh directory of its own. */
function projectCopy(): string {
  const dir = tempDir();
  for (const entry of ['dist', 'node_modules', 'drizzle']) {
    symlinkSync(join(ROOT, entry), join(dir, entry));
  }
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(ROOT, 'bin', 'myapi'), join(dir, 'bin', 'myapi'));
  return realpathSync(dir);
}

function parsed(line: string): Record<string, unknown> {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** The last value of `field` in the JSON objects that earlier commands printed. */
function lastField(outputs: string[], field: string): string {
  for (const output of outputs.toReversed()) {
    for (const line of output.split('\n').toReversed()) {
      if (!line.startsWith('{')) continue;
      const value = parsed(line)[field];
      if (typeof value === 'string') return value;
    }
  }
  assert.fail(`no earlier command printed a JSON "${field}"`);
}

const PLACEHOLDER_FIELDS: Record<string, string> = { token: 'access_token' };

describe('the commands in README.md and docs/', { concurrency: 1 }, () => {
  const pages = new Map(PAGES.map((page) => [page, readFileSync(join(ROOT, page), 'utf8')]));
  const used = new Set<string>();
  const outputs: string[] = [];
  const dropDatabases: (() => Promise<void>)[] = [];
  let cwd: string;
  let port: number;
  let server: BackgroundServer | undefined;

  before(async () => {
    cwd = projectCopy();
    port = await freePort();
  });

  after(async () => {
    await server?.stop();
    for (const drop of dropDatabases) await drop();
  });

  it('covers every page in docs/', () => {
    const docs = readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md'));
    assert.deepEqual(docs.map((name) => `docs/${name}`).sort(), PAGES.slice(1).sort());
  });

  it('starts with the quick start: install, then start', () => {
    const first = extractCommands('README.md', pages.get('README.md') ?? '')[0];
    assert.equal(first?.text.replace(/\s+#.*$/, ''), 'npm install && npm start');
  });

  for (const page of PAGES) {
    it(`runs ${page}`, { timeout: 15 * COMMAND_TIMEOUT_MS }, async () => {
      // Each page starts from a fresh shell (its own variables); the server and files stay.
      const env = cleanEnv({ MYAPI_PORT: String(port) });
      const url = `http://127.0.0.1:${port}`;
      let dsn: string | undefined;
      for (const command of extractCommands(page, pages.get(page) ?? '')) {
        const where = `${command.page}:${command.line}: ${command.text}`;
        let text = command.text
          .replace(/^npm install && npm start\b/, 'npm start')
          .replaceAll(DOC_URL, url)
          .replace(/<([a-z_]+)>/g, (_, name: string) =>
            lastField(outputs, PLACEHOLDER_FIELDS[name] ?? name),
          );
        const plain = text.replace(/\s+#.*$/, '');
        if (NOT_RUN.has(plain)) {
          used.add(plain);
          continue;
        }
        if (plain === 'createdb myapi') {
          // The same database under a name of its own, so parallel runs never share it.
          const created = await createServerDatabase();
          dropDatabases.push(created.drop);
          dsn = created.dsn;
          continue;
        }
        if (text.includes(DOC_DSN)) {
          assert.ok(dsn, `${where}: needs the database that \`createdb myapi\` makes first`);
          text = text.replaceAll(DOC_DSN, dsn);
        }
        const expected = command.expected.map((shown) => shown.replaceAll(DOC_URL, url));
        const shows = (output: string) =>
          `${where}: the output differs from the page\n--- page\n${expected.join('\n')}\n--- output\n${output}`;
        const failure = expected.some((shown) => shown.startsWith('myapi: error:'));
        if (/^(npm start|bin\/myapi serve)\b/.test(plain) && !failure) {
          await server?.stop();
          server = new BackgroundServer(text, cwd, env);
          await server.ready(url);
          assert.ok(matchesShown(expected, server.output), shows(server.output));
          continue;
        }
        const assignment = ASSIGNMENT.exec(plain);
        if (assignment?.[1] !== undefined) {
          const name = assignment[1];
          const ran = await runShell(`${text}\nprintf '%s' "$${name}"`, cwd, env, false);
          assert.equal(ran.code, 0, `${where}\n${ran.output}`);
          env[name] = ran.stdout;
          continue;
        }
        const ran = await runShell(text, cwd, env);
        outputs.push(ran.output);
        if (failure) assert.notEqual(ran.code, 0, `${where}: should fail\n${ran.output}`);
        else assert.equal(ran.code, 0, `${where}: failed\n${ran.output}`);
        assert.ok(matchesShown(expected, ran.output), shows(ran.output));
      }
    });
  }

  it('lists no command as not run that the pages no longer have', () => {
    assert.deepEqual(
      [...NOT_RUN.keys()].filter((command) => !used.has(command)),
      [],
    );
  });
});

describe('bin/myapi', () => {
  it('becomes the server process, so a SIGTERM sent to it stops the server gracefully', async () => {
    const port = await freePort();
    const server = new BackgroundServer(
      'exec bin/myapi serve',
      projectCopy(),
      cleanEnv({ MYAPI_PORT: String(port) }),
    );
    await server.ready(`http://127.0.0.1:${port}`);
    // Without exec, bin/myapi's shell would take the signal and die, leaving the server behind.
    assert.deepEqual(await server.stop(false), [0, null]);
  });

  it('says what to run when the project is not built', async () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, 'bin'));
    copyFileSync(join(ROOT, 'bin', 'myapi'), join(cwd, 'bin', 'myapi'));
    const ran = await runShell('bin/myapi --version', cwd, cleanEnv());
    assert.equal(ran.code, 1);
    assert.match(ran.output, /^myapi: error: .*dist\/cli\.js is missing: run npm install/);
  });
});
