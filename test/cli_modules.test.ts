import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createServerDatabase, TOKEN_KEY } from './support/databases.js';
import { freePort, lines, runCommand, tempDir, type RunResult } from './support/process.js';

/**
 * The CLI's commands other than `serve` never load Fastify, nor prom-client even with metrics
 * configured: a module-resolution hook, installed with NODE_OPTIONS=--import, makes any import of
 * fastify, a @fastify plugin or prom-client throw. `serve` under the same hook must fail, which
 * shows that the hook would catch a stray import.
 */

const RUN_TIMEOUT_MS = 120_000;
const FORBIDDEN = /^(@fastify\/|fastify($|[-/])|prom-client($|\/))/;

function writeHook(dir: string): string {
  const hook = join(dir, 'no_fastify_hook.mjs');
  writeFileSync(
    hook,
    `export async function resolve(specifier, context, next) {
  if (${FORBIDDEN.toString()}.test(specifier)) throw new Error('forbidden import of ' + specifier);
  return next(specifier, context);
}
`,
  );
  const register = join(dir, 'no_fastify.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(hook).href)});
`,
  );
  return register;
}

function show(args: string[], result: RunResult): string {
  return `myapi ${args.join(' ')}: exit ${String(result.code)}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
}

describe('the CLI without Fastify', { concurrency: 1 }, () => {
  let server: { dsn: string; drop: () => Promise<void> };
  let cwd: string;
  let env: Record<string, string>;
  const cli = async (args: string[], input?: string) => {
    const result = await runCommand(args, {
      cwd,
      env,
      timeoutMs: RUN_TIMEOUT_MS,
      ...(input === undefined ? {} : { input }),
    });
    return { result, shown: show(args, result) };
  };

  before(async () => {
    server = await createServerDatabase();
    cwd = tempDir();
    env = {
      MYAPI_DATABASE__DSN: server.dsn,
      MYAPI_TOKEN_KEY: TOKEN_KEY,
      MYAPI_METRICS__PORT: '0',
      NODE_OPTIONS: `--import=${writeHook(cwd)}`,
    };
  });
  after(async () => {
    await server.drop();
  });

  it('runs the database, movie and user commands with every Fastify import refused', async () => {
    const runs: [string[], RegExp][] = [
      [['--help'], /create-user/],
      [['migrate'], /applied 0000_init/],
      [['seed'], /added \d+ movies/],
      [['export-movies'], /^movie_id,title,released,rating\n1,/],
      [
        ['create-user', '--name', 'n', '--email', 'n@myapi.com', '--password', 'pw-123456'],
        /created user/,
      ],
      [['users', 'list'], /n@myapi\.com/],
    ];
    for (const [args, stdout] of runs) {
      const { result, shown } = await cli(args);
      assert.equal(result.code, 0, shown);
      assert.match(result.stdout, stdout, shown);
      assert.doesNotMatch(result.stderr, /forbidden import/, shown);
    }
  });

  it('serve loads Fastify, so the hook stops it: the hook is in force', async () => {
    const port = await freePort();
    const { result, shown } = await cli(['serve', '--port', String(port)]);
    assert.equal(result.code, 1, shown);
    const [line] = lines(result.stderr);
    assert.match(line ?? '', /^myapi: error: .*forbidden import of (@fastify\/|fastify)/, shown);
  });
});
