/** Writing a generated service into the project, and taking it out again. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SpecError, type ServiceSpec } from './fields.js';
import { definitionModule, crudModule, routerModule, serviceModule } from './code_template.js';
import { docsPage, testModule } from './docs_template.js';
import { modelModule, schemasModule } from './model_template.js';
import { camel } from './names.js';

const REGISTRY = 'src/services/registry.ts';
const JOURNAL = 'drizzle/meta/_journal.json';
/** Paths the application already serves, or folders of its own: a service may not take them. */
const TAKEN_NAMES = new Set([
  'auth',
  'token',
  'health',
  'ready',
  'docs',
  'metrics',
  'resource',
  'base',
]);

export type Log = (line: string) => void;

/** The project to write into: the folder with the registry, or an error saying what is missing. */
export function findProject(cwd: string): string {
  for (const required of [REGISTRY, 'drizzle.config.ts', JOURNAL]) {
    if (!existsSync(join(cwd, required))) {
      throw new SpecError(
        `${cwd} is not a myapi project checkout (no ${required}): run this in one`,
      );
    }
  }
  return cwd;
}

/** Every file a service has, by its path in the project. */
export function serviceFiles(spec: ServiceSpec): Record<string, string> {
  return {
    [`src/models/${spec.name}.ts`]: modelModule(spec),
    [`src/schemas/${spec.name}.ts`]: schemasModule(spec),
    [`src/services/${spec.name}/crud.ts`]: crudModule(spec),
    [`src/services/${spec.name}/service.ts`]: serviceModule(spec),
    [`src/services/${spec.name}/index.ts`]: definitionModule(spec),
    [`src/routers/${spec.name}.ts`]: routerModule(spec),
    [`docs/services/${spec.name}.md`]: docsPage(spec),
    [`test/${spec.name}.test.ts`]: testModule(spec),
  };
}

interface RegistryEntry {
  name: string;
  from: string;
}

function readRegistry(root: string): { header: string; entries: RegistryEntry[] } {
  const text = readFileSync(join(root, REGISTRY), 'utf8');
  const imports = new Map(
    [...text.matchAll(/^import \{ (\w+) \} from '([^']+)';$/gm)].map(([, name = '', from = '']) => [
      name,
      from,
    ]),
  );
  const list = /serviceDefinitions = \[([^\]]*)\]/.exec(text)?.[1];
  if (list === undefined) throw new SpecError(`${REGISTRY} has no serviceDefinitions list`);
  const names = list
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const entries = names.map((name) => {
    const from = imports.get(name);
    if (from === undefined) throw new SpecError(`${REGISTRY}: ${name} is listed but not imported`);
    return { name, from };
  });
  return { header: text.slice(0, text.indexOf('import ')), entries };
}

function writeRegistry(root: string, header: string, entries: readonly RegistryEntry[]): string {
  const text =
    header +
    entries.map(({ name, from }) => `import { ${name} } from '${from}';\n`).join('') +
    `\nexport const serviceDefinitions = [${entries.map(({ name }) => name).join(', ')}] as const;\n`;
  writeFileSync(join(root, REGISTRY), text);
  return REGISTRY;
}

/** Formats the files as the project's format check wants them, with the project's prettier. */
async function format(root: string, paths: readonly string[], log: Log): Promise<void> {
  type Prettier = typeof import('prettier');
  let prettier: Prettier;
  try {
    const resolved = createRequire(join(root, 'package.json')).resolve('prettier');
    // The CommonJS entry, imported: its API is the module's default export.
    const loaded = (await import(pathToFileURL(resolved).href)) as Prettier & {
      default?: Prettier;
    };
    prettier = loaded.default ?? loaded;
  } catch {
    log('prettier is not installed here: the files are written unformatted (npm run format)');
    return;
  }
  for (const path of paths) {
    const file = join(root, path);
    const options = (await prettier.resolveConfig(file)) ?? {};
    writeFileSync(
      file,
      await prettier.format(readFileSync(file, 'utf8'), { ...options, filepath: file }),
    );
  }
}

/** drizzle-kit generate, with the project's own drizzle-kit: the migration and its snapshot. */
function generateMigration(root: string, name: string, log: Log): void {
  // The package exports no subpaths: its command is found where npm installs it.
  const bin = join(root, 'node_modules', 'drizzle-kit', 'bin.cjs');
  if (!existsSync(bin))
    throw new SpecError('drizzle-kit is not installed here: run npm install first');
  log(`drizzle-kit generate --name ${name}`);
  const run = spawnSync(process.execPath, [bin, 'generate', '--name', name], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  });
  if (run.status !== 0) {
    throw new Error(
      `drizzle-kit generate failed: ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' ')}`,
    );
  }
}

function journalTags(root: string): string[] {
  const journal = JSON.parse(readFileSync(join(root, JOURNAL), 'utf8')) as {
    entries: { tag: string }[];
  };
  return journal.entries.map(({ tag }) => tag);
}

/** Writes a new service: its files, its registry entry and its migration; undone on any failure. */
export async function addService(root: string, spec: ServiceSpec, log: Log): Promise<string[]> {
  const definition = `${camel(spec.name)}Definition`;
  const registry = readRegistry(root);
  if (
    TAKEN_NAMES.has(spec.name) ||
    registry.entries.some(({ from }) => from.includes(`/${spec.name}`))
  ) {
    throw new SpecError(
      `${spec.name}: the application already has a service or route of that name`,
    );
  }
  const files = serviceFiles(spec);
  const existing = [...Object.keys(files), `src/services/${spec.name}`].filter((path) =>
    existsSync(join(root, path)),
  );
  if (existing.length > 0) throw new SpecError(`refusing to overwrite ${existing.join(', ')}`);

  const registryBefore = readFileSync(join(root, REGISTRY), 'utf8');
  const tagsBefore = journalTags(root);
  const journalBefore = readFileSync(join(root, JOURNAL), 'utf8');
  try {
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), content, { flag: 'wx' });
      log(`wrote ${path}`);
    }
    writeRegistry(root, registry.header, [
      ...registry.entries,
      { name: definition, from: `./${spec.name}/index.js` },
    ]);
    log(`registered ${spec.name} in ${REGISTRY}`);
    await format(root, [...Object.keys(files), REGISTRY], log);
    generateMigration(root, `create_${spec.name}`, log);
  } catch (error) {
    for (const path of Object.keys(files)) rmSync(join(root, path), { force: true });
    rmSync(join(root, `src/services/${spec.name}`), { recursive: true, force: true });
    removeIfEmpty(join(root, 'docs/services'));
    writeFileSync(join(root, REGISTRY), registryBefore);
    removeMigrations(
      root,
      journalTags(root).filter((tag) => !tagsBefore.includes(tag)),
    );
    writeFileSync(join(root, JOURNAL), journalBefore);
    throw error;
  }
  const added = journalTags(root).filter((tag) => !tagsBefore.includes(tag));
  return [...Object.keys(files), REGISTRY, ...added.map((tag) => `drizzle/${tag}.sql`)];
}

function removeIfEmpty(folder: string): void {
  if (existsSync(folder) && readdirSync(folder).length === 0) rmSync(folder, { recursive: true });
}

/** Deletes migrations (their SQL, snapshot and journal entry): only ones never applied anywhere. */
function removeMigrations(root: string, tags: readonly string[]): void {
  if (tags.length === 0) return;
  const journal = JSON.parse(readFileSync(join(root, JOURNAL), 'utf8')) as {
    entries: { idx: number; tag: string }[];
  };
  for (const tag of tags) {
    rmSync(join(root, 'drizzle', `${tag}.sql`), { force: true });
    rmSync(join(root, 'drizzle', 'meta', `${tag.slice(0, 4)}_snapshot.json`), { force: true });
  }
  journal.entries = journal.entries.filter(({ tag }) => !tags.includes(tag));
  // As drizzle-kit writes it (two spaces, no newline at the end), so a round trip changes nothing.
  writeFileSync(join(root, JOURNAL), JSON.stringify(journal, null, 2));
}

/**
 * Takes a service out: its files and registry entry, and then either a migration that drops its
 * table (for databases that applied it), or, with `discardMigration`, its own migration, when
 * that is the newest and was never applied where it matters.
 */
export async function removeService(
  root: string,
  name: string,
  options: { discardMigration: boolean },
  log: Log,
): Promise<void> {
  const registry = readRegistry(root);
  const entry = registry.entries.find(({ from }) => from === `./${name}/index.js`);
  if (entry === undefined)
    throw new SpecError(`${name}: no generated service of that name is registered`);
  const tags = journalTags(root);
  const created = tags.filter((tag) => tag.endsWith(`_create_${name}`));
  if (options.discardMigration && (created.length !== 1 || tags[tags.length - 1] !== created[0])) {
    throw new SpecError(
      `${name}: its migration is not the newest one, so databases may depend on it: remove without --discard-migration to write a drop migration`,
    );
  }
  const paths = Object.keys(serviceFiles({ name, singular: '', idKind: 'serial', fields: [] }));
  for (const path of paths) {
    if (existsSync(join(root, path))) log(`removed ${path}`);
    rmSync(join(root, path), { force: true });
  }
  rmSync(join(root, `src/services/${name}`), { recursive: true, force: true });
  removeIfEmpty(join(root, 'docs/services'));
  writeRegistry(
    root,
    registry.header,
    registry.entries.filter((other) => other !== entry),
  );
  await format(root, [REGISTRY], log);
  log(`unregistered ${name} from ${REGISTRY}`);
  if (options.discardMigration) {
    removeMigrations(root, created);
    log(
      `discarded drizzle/${created[0]}.sql; a database that applied it keeps myapi.${name}: drop it by hand`,
    );
  } else {
    generateMigration(root, `drop_${name}`, log);
  }
}
