/**
 * `myapi new-service` end to end, as a user runs it in a checkout: two services with different
 * fields are generated into a copy of this project, pass its checks, migrate both databases and
 * pass their own generated tests; then `myapi remove-service` leaves the tree as it was.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { claimCopyCoverage } from './support/copy_coverage.js';
import { createServerDatabase, TOKEN_KEY } from './support/databases.js';
import { CLI, cleanEnv, scaled } from './support/process.js';

const PROJECT = fileURLToPath(new URL('..', import.meta.url));
// Names no checkout is likely to have already: the copy holds the checkout's own services too.
const DIRECTORS = ['gen_directors', 'name:text', 'born:int?', 'country:text?', '--id', 'serial'];
const STUDIOS = [
  'gen_studios',
  'code:text!',
  'founded:date?',
  'revenue:numeric(12,2)?',
  'active:bool=true',
  'opened_at:timestamptz=now',
  'ref:uuid?',
  'staff:bigint?',
  '--id',
  'uuid',
];

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** A command in the copy, to its end; never throws on a failing status. */
function run(cwd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const childEnv = cleanEnv({ CI: 'true', ...env });
    // A test runner inside this one would report to it, not as TAP on its own output.
    delete childEnv.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, args, { cwd, env: childEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => {
      resolve({ status: status ?? -1, stdout, stderr });
    });
  });
}

/** Every file of the tree (the node_modules link aside) with a digest of its content. */
function treeDigest(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.name === 'node_modules' || entry.name === '.myapi') continue;
      if (entry.isDirectory()) walk(path);
      else
        files.set(
          relative(root, path),
          createHash('sha256').update(readFileSync(path)).digest('hex'),
        );
    }
  };
  walk(root);
  return files;
}

describe(
  'myapi new-service and remove-service in a copy of the project',
  { concurrency: 1, timeout: scaled(900_000) },
  () => {
    let copy: string;
    let before_: Map<string, string>;
    const myapi = (...args: string[]) => run(copy, [CLI, ...args]);
    const tsxCli = (args: string[], dsn: string) =>
      run(copy, ['--import', 'tsx', 'src/cli.ts', ...args], {
        MYAPI_DATABASE__DSN: dsn,
        MYAPI_TOKEN_KEY: TOKEN_KEY,
      });

    before(() => {
      const root = mkdtempSync(join(tmpdir(), 'myapi-generator-'));
      copy = join(root, 'project');
      // The checkout's files (tracked, and new ones git does not ignore, such as a service just
      // generated), with its installed packages.
      const files = execFileSync(
        'git',
        ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
        {
          cwd: PROJECT,
          encoding: 'utf8',
        },
      )
        .split('\0')
        .filter((path) => path !== '' && existsSync(join(PROJECT, path)));
      for (const path of files) {
        mkdirSync(dirname(join(copy, path)), { recursive: true });
        cpSync(join(PROJECT, path), join(copy, path));
      }
      symlinkSync(join(PROJECT, 'node_modules'), join(copy, 'node_modules'), 'dir');
      before_ = treeDigest(copy);
    });
    after(() => {
      rmSync(dirname(copy), { recursive: true, force: true });
    });

    it('refuses a bad name, type, field or a taken name, writing nothing', async () => {
      const refusals: [string[], RegExp][] = [
        [['Directors', 'name:text'], /lower_snake_case/],
        [['directors', 'name:float'], /unknown type float/],
        [['directors', 'id:int'], /the API's own/],
        [['directors', 'born:int=soon'], /not a default for int/],
        [['directors', 'title:text', 'title_contains:text'], /would mean two things/],
        [['movies', 'title:text'], /already has a service/],
        [['directors'], /missing required argument|at least one field/],
      ];
      for (const [args, message] of refusals) {
        const result = await myapi('new-service', ...args);
        assert.equal(result.status, 1, `${args.join(' ')}: ${result.stdout}`);
        assert.match(result.stderr, message);
      }
      assert.deepEqual(treeDigest(copy), before_);
    });

    it('writes two services: files, registry entries and migrations', async () => {
      for (const args of [DIRECTORS, STUDIOS]) {
        const result = await myapi('new-service', ...args);
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stdout, /files written or changed/);
      }
      for (const name of ['gen_directors', 'gen_studios']) {
        for (const path of [
          `src/models/${name}.ts`,
          `src/routers/${name}.ts`,
          `src/services/${name}/index.ts`,
          `docs/services/${name}.md`,
          `test/${name}.test.ts`,
        ]) {
          assert.ok(existsSync(join(copy, path)), path);
        }
      }
      const registry = readFileSync(join(copy, 'src/services/registry.ts'), 'utf8');
      assert.match(
        registry.replace(/\s+/g, ''),
        /,genDirectorsDefinition,genStudiosDefinition,?\]/,
      );
      const migrations = readdirSync(join(copy, 'drizzle')).filter((name) => name.endsWith('.sql'));
      const directors = migrations.find((name) => name.endsWith('_create_gen_directors.sql'));
      const studios = migrations.find((name) => name.endsWith('_create_gen_studios.sql'));
      assert.ok(directors !== undefined && studios !== undefined, migrations.join(' '));
      const sql = readFileSync(join(copy, 'drizzle', studios), 'utf8');
      assert.match(sql, /CREATE TABLE "myapi"\."gen_studios"/);
      assert.match(sql, /"id" uuid PRIMARY KEY DEFAULT gen_random_uuid\(\)/);
      assert.match(sql, /"revenue" numeric\(12, 2\)/);
      assert.match(sql, /UNIQUE\("code"\)/);
      const again = await myapi('new-service', ...DIRECTORS);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /already has a service|refusing to overwrite/);
    });

    it('the generated code passes the typecheck, lint and format check untouched', async () => {
      const typecheck = await run(copy, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.']);
      assert.equal(typecheck.status, 0, typecheck.stdout);
      const generated = [
        'src/services/registry.ts',
        'src/models',
        'src/schemas',
        'src/services/gen_directors',
        'src/services/gen_studios',
        'src/routers',
        'test/gen_directors.test.ts',
        'test/gen_studios.test.ts',
      ];
      const lint = await run(copy, ['node_modules/eslint/bin/eslint.js', ...generated]);
      assert.equal(lint.status, 0, lint.stdout);
      const format = await run(copy, [
        'node_modules/prettier/bin/prettier.cjs',
        '--check',
        ...generated,
        'docs/services',
      ]);
      assert.equal(format.status, 0, format.stdout + format.stderr);
    });

    it('migrates the embedded database and the PostgreSQL server', async () => {
      const server = await createServerDatabase();
      try {
        for (const dsn of [`pglite:${join(dirname(copy), 'pgdata')}`, server.dsn]) {
          const result = await tsxCli(['migrate'], dsn);
          assert.equal(result.status, 0, result.stderr);
          assert.match(result.stdout, /applied \d{4}_create_gen_directors/);
          assert.match(result.stdout, /applied \d{4}_create_gen_studios/);
        }
      } finally {
        await server.drop();
      }
    });

    it("the generated services' own tests pass on both databases", async () => {
      const started = Date.now();
      const result = await run(copy, [
        '--import',
        'tsx',
        '--test',
        'test/gen_directors.test.ts',
        'test/gen_studios.test.ts',
      ]);
      assert.equal(result.status, 0, result.stdout.slice(-4000));
      assert.match(result.stdout, /# fail 0/);
      const passed = Number(/# pass (\d+)/.exec(result.stdout)?.[1]);
      assert.ok(passed >= 30, `${passed} tests passed`);
      claimCopyCoverage(copy, PROJECT.replace(/\/$/, ''), started);
    });

    it('remove-service takes both out and leaves the tree exactly as before', async () => {
      const early = await myapi('remove-service', 'gen_directors', '--discard-migration');
      assert.equal(early.status, 1, 'directors is not the newest migration');
      assert.match(early.stderr, /not the newest/);
      for (const name of ['gen_studios', 'gen_directors']) {
        const result = await myapi('remove-service', name, '--discard-migration');
        assert.equal(result.status, 0, result.stderr);
      }
      assert.deepEqual(treeDigest(copy), before_);
    });

    it('remove-service without --discard-migration writes a migration that drops the table', async () => {
      const pgdata = `pglite:${join(dirname(copy), 'gen_labels')}`;
      assert.equal((await myapi('new-service', 'gen_labels', 'name:text!')).status, 0);
      assert.equal((await tsxCli(['migrate'], pgdata)).status, 0);
      const removed = await myapi('remove-service', 'gen_labels');
      assert.equal(removed.status, 0, removed.stderr);
      const drop = readdirSync(join(copy, 'drizzle')).find((name) =>
        name.endsWith('_drop_gen_labels.sql'),
      );
      assert.ok(drop !== undefined);
      assert.match(
        readFileSync(join(copy, 'drizzle', drop), 'utf8'),
        /DROP TABLE "myapi"\."gen_labels"/,
      );
      const migrated = await tsxCli(['migrate'], pgdata);
      assert.equal(migrated.status, 0, migrated.stderr);
      assert.match(migrated.stdout, /applied \d{4}_drop_gen_labels/);
    });
  },
);
