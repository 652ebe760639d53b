/** `myapi new-service` and `myapi remove-service`: a whole resource, written or taken out, in one command. */
import type { Command } from 'commander';
import { InputError } from './common.js';
import { parseServiceSpec, SpecError } from './generator/fields.js';
import { addService, findProject, removeService } from './generator/project.js';

const say = (line: string) => {
  process.stdout.write(`${line}\n`);
};

/** The generator's own refusals are the user's input: one line, as every CLI error. */
async function asInput(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof SpecError) throw new InputError(error.message);
    throw error;
  }
}

export function registerServices(program: Command): void {
  program
    .command('new-service')
    .description(
      'write a new service into this checkout: model, migration, schemas, CRUD, service, router, docs and tests',
    )
    .argument('<name>', 'the service, its table and its path: plural lower_snake_case (directors)')
    .argument(
      '<fields...>',
      'name:type, type one of text int bigint numeric(p,s) bool date timestamptz uuid; ' +
        'then ! unique, ? may be null, =default (born:int?, code:text!, active:bool=true)',
    )
    .option('--id <kind>', 'the id: serial, bigserial or uuid', 'serial')
    .option(
      '--singular <name>',
      'one item, when the name does not end in s (staff: --singular member)',
    )
    .action((name: string, fields: string[], options: { id: string; singular?: string }) =>
      asInput(async () => {
        const root = findProject(process.cwd());
        const spec = parseServiceSpec(name, fields, options);
        const written = await addService(root, spec, say);
        say(`\n${spec.name}: ${written.length} files written or changed.`);
        say('Next: myapi migrate (or start the server), then npm test.');
      }),
    );

  program
    .command('remove-service')
    .description(
      'take a generated service out of this checkout, and drop its table by a new migration',
    )
    .argument('<name>', 'the service, as given to new-service')
    .option(
      '--discard-migration',
      'delete its migration instead of writing a drop migration (only if no database you keep applied it)',
    )
    .action((name: string, options: { discardMigration?: boolean }) =>
      asInput(async () => {
        const root = findProject(process.cwd());
        await removeService(
          root,
          name,
          { discardMigration: options.discardMigration === true },
          say,
        );
        say(`\n${name} removed. Next: myapi migrate, then npm test.`);
      }),
    );
}
