/** `myapi migrate` and `myapi seed`: the database's schema and its demo or generated movies. */
import type { Command } from 'commander';
import { migrate } from '../backend/database.js';
import {
  positiveInteger,
  progressPrinter,
  secondsSince,
  withCatalogue,
  withDatabase,
} from './common.js';

export function registerDatabase(program: Command): void {
  program
    .command('migrate')
    .description('apply the database migrations in drizzle/ (safe to run again)')
    .action(() =>
      withDatabase(async (database) => {
        const report = await migrate(database.db, (tag) => {
          process.stdout.write(`applied ${tag}\n`);
        });
        const total = report.applied.length + report.alreadyApplied.length;
        process.stdout.write(
          report.applied.length === 0
            ? `${database.label} is up to date (${total} migrations)\n`
            : `${database.label}: applied ${report.applied.length} of ${total} migrations\n`,
        );
      }),
    );

  program
    .command('seed')
    .description('load the demo movies (idempotent), or add generated ones with --synthetic')
    .option(
      '--synthetic <count>',
      'add this many generated movies after the highest id',
      positiveInteger,
    )
    .action((options: { synthetic?: number }) =>
      withCatalogue(async ({ movies }, database) => {
        const { synthetic } = options;
        const started = Date.now();
        const { inserted, total } =
          synthetic === undefined
            ? await movies.seedDemo()
            : await movies.seedSynthetic(synthetic, progressPrinter('generating movies'));
        process.stdout.write(
          `added ${inserted} movies in ${secondsSince(started)} s; ${total} movies in ${database.label}\n`,
        );
      }),
    );
}
