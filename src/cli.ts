#!/usr/bin/env node
import cluster from 'node:cluster';
import { createReadStream, statSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { accountOptions, VERSION } from './app.js';
import { ConfigError, loadSettings, type LoadOptions, type Settings } from './backend/config.js';
import { migrate, openDatabase, type Database } from './backend/database.js';
import { DatabaseInUseError } from './backend/embedded.js';
import { createLogger } from './backend/logging.js';
import { NotMigratedError, prepareDatabase } from './prepare.js';
import { askHidden, readLine } from './backend/prompt.js';
import { DatabaseUnavailableError, describeUnavailable } from './backend/database.js';
import { AppError } from './exc.js';
import { closeOnSignals, startServer } from './server.js';
import { parseWorkers, superviseWorkers, WorkersError } from './cluster.js';
import { CsvError } from './services/movie_csv.js';
import { MovieService } from './services/movies.js';
import { createAccountServices } from './services/index.js';
import { USERS_PAGE_MAX, type UserUpdate } from './schemas/users.js';

/** Bad input at the command line. */
class InputError extends Error {
  override name = 'InputError';
}

/** Errors whose message is the whole story for an operator: printed as one line, no stack. */
const EXPECTED_ERRORS = [
  InputError,
  AppError,
  ConfigError,
  DatabaseUnavailableError,
  DatabaseInUseError,
  NotMigratedError,
  WorkersError,
];

function fail(message: string): never {
  process.stderr.write(`myapi: error: ${message}\n`);
  process.exit(1);
}

function report(error: unknown): never {
  if (EXPECTED_ERRORS.some((kind) => error instanceof kind)) fail((error as Error).message);
  const unavailable = describeUnavailable(error);
  if (unavailable !== undefined) fail(unavailable);
  fail(`unexpected error: ${error instanceof Error ? error.message : String(error)}`);
}

function settingsFrom(options: LoadOptions = {}) {
  const { settings, unknown } = loadSettings(options);
  if (unknown.length > 0) {
    process.stderr.write(`myapi: warning: ignoring unknown settings: ${unknown.join(', ')}\n`);
  }
  return settings;
}

/** Opens the configured database for a one-off command (through a running server if need be). */
async function withDatabase<T>(
  work: (database: Database, settings: Settings) => Promise<T>,
): Promise<T> {
  const settings = settingsFrom();
  const database = await openDatabase(settings, {
    role: 'tool',
    poolMax: 2,
    command: `myapi ${process.argv.slice(2, 3).join(' ')}`,
    onWait: (message) => process.stderr.write(`myapi: ${message}\n`),
  });
  try {
    return await work(database, settings);
  } finally {
    await database.close();
  }
}

/** Commands that use tables: the embedded database migrates itself, a server must be migrated. */
function withReadyDatabase<T>(
  work: (database: Database, settings: Settings) => Promise<T>,
): Promise<T> {
  return withDatabase(async (database, settings) => {
    await prepareDatabase(database, createLogger('warn', process.stderr));
    return work(database, settings);
  });
}

/** The account services on the configured database, for the user commands. */
function withAccounts<T>(
  work: (accounts: ReturnType<typeof createAccountServices>) => Promise<T>,
): Promise<T> {
  return withReadyDatabase((database, settings) =>
    // Full speed: an operator waits for this hash, and no requests compete with it here.
    work(createAccountServices(database, { ...accountOptions(settings), passwords: {} })),
  );
}

/** The CLI is an operator's tool: a weak password is worth a warning, not a refusal. */
function warnIfWeak(problems: string[]): void {
  for (const problem of problems) {
    process.stderr.write(`myapi: warning: ${problem} (the HTTP API would refuse it)\n`);
  }
}

const yesNo = (value: boolean) => (value ? 'yes' : 'no');
const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

function positiveInteger(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > 100_000_000) {
    throw new InvalidArgumentError('must be a whole number from 1 to 100000000');
  }
  return Number(value);
}

function workers(value: string): number {
  try {
    return parseWorkers(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function port(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) > 65_535) {
    throw new InvalidArgumentError('must be a port number from 0 to 65535');
  }
  return Number(value);
}

async function passwordFromUser(): Promise<string> {
  if (!process.stdin.isTTY) return readLine(process.stdin);
  const first = await askHidden('Password: ', process.stdin, process.stderr);
  const second = await askHidden('Repeat password: ', process.stdin, process.stderr);
  if (first !== second) throw new InputError('the passwords do not match');
  return first;
}

function progressPrinter(label: string): (done: number, total: number) => void {
  const tty = process.stderr.isTTY;
  return (done, total) => {
    const line = `${label}: ${done}/${total} (${Math.floor((done / total) * 100)}%)`;
    process.stderr.write(tty ? `\r${line}${done === total ? '\n' : ''}` : `${line}\n`);
  };
}

/** Files this large show their progress; smaller ones are done before it would matter. */
const PROGRESS_MIN_BYTES = 1024 * 1024;

/**
 * The text of FILE (or stdin for `-`) in chunks, strictly decoded as UTF-8, counting the bytes
 * read so progress can be shown against the file's size.
 */
async function* utf8Chunks(file: string, onBytes: (bytes: number) => void): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const stream = file === '-' ? process.stdin : createReadStream(file);
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    try {
      yield decoder.decode(chunk, { stream: true });
    } catch {
      throw new InputError(`${file}: not valid UTF-8 (within its first ${bytes} bytes)`);
    }
    onBytes(bytes);
  }
  yield decoder.decode();
}

function fileSize(file: string): number | undefined {
  if (file === '-') return undefined;
  try {
    return statSync(file).size;
  } catch (error) {
    throw new InputError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

/** Writes to stdout, waiting when its buffer is full so a million rows never pile up in memory. */
function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.stdout.write(text)) resolve();
    else {
      process.stdout.once('drain', resolve);
      process.stdout.once('error', reject);
    }
  });
}

export function buildCli(): Command {
  const program = new Command()
    .name('myapi')
    .description('myapi: a movies API with OAuth2 password login on PostgreSQL')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .configureOutput({
      outputError: (text, write) => {
        write(`myapi: ${text.replace(/^error: /, 'error: ')}`);
      },
    });

  program
    .command('serve')
    .description('serve the API (what `npm start` runs)')
    .option('--host <host>', 'address to listen on (default: MYAPI_HOST or 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default: MYAPI_PORT or 8000)', port)
    .option(
      '--workers <n>',
      'processes serving the same port: a number, or "auto" for one per core (PostgreSQL only)',
      workers,
      1,
    )
    .action(async (options: { host?: string; port?: number; workers: number }) => {
      const settings = settingsFrom({ overrides: { host: options.host, port: options.port } });
      const logger = createLogger(settings.log_level);
      if (options.workers > 1 && cluster.isPrimary) {
        await superviseWorkers(settings, options.workers, logger);
        return;
      }
      closeOnSignals(await startServer(settings, logger), logger);
    });

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
      withReadyDatabase(async (database) => {
        const movies = new MovieService(database);
        const { synthetic } = options;
        const started = Date.now();
        const { inserted, total } =
          synthetic === undefined
            ? await movies.seedDemo()
            : await movies.seedSynthetic(synthetic, progressPrinter('generating movies'));
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        process.stdout.write(
          `added ${inserted} movies in ${seconds} s; ${total} movies in ${database.label}\n`,
        );
      }),
    );

  program
    .command('import-movies')
    .description(
      'add the movies of a CSV file (header movie_id,title,released,rating; "-" for stdin) in one transaction: a bad row or a taken movie_id aborts it with its line number and changes nothing',
    )
    .argument('<file>', 'the CSV file, as export-movies writes it')
    .action((file: string) => {
      const size = fileSize(file);
      return withReadyDatabase(async (database) => {
        const movies = new MovieService(database);
        const progress =
          size !== undefined && size >= PROGRESS_MIN_BYTES
            ? progressPrinter(`importing ${file} (bytes)`)
            : undefined;
        let bytesRead = 0;
        let shownPercent = -1;
        const started = Date.now();
        try {
          const { inserted, total } = await movies.importCsv(
            utf8Chunks(file, (bytes) => (bytesRead = bytes)),
            () => {
              const percent = size === undefined ? 0 : Math.floor((bytesRead / size) * 100);
              if (progress !== undefined && size !== undefined && percent > shownPercent) {
                shownPercent = percent;
                progress(Math.min(bytesRead, size), size);
              }
            },
          );
          if (progress !== undefined && size !== undefined && shownPercent < 100) {
            progress(size, size);
          }
          const seconds = ((Date.now() - started) / 1000).toFixed(1);
          process.stdout.write(
            `imported ${inserted} movies in ${seconds} s; ${total} movies in ${database.label}\n`,
          );
        } catch (error) {
          if (error instanceof CsvError) {
            throw new InputError(`${file} ${error.message}; nothing was imported`);
          }
          throw error;
        }
      });
    });

  program
    .command('export-movies')
    .description('write every movie to stdout as CSV (the format import-movies reads), by movie_id')
    .action(() =>
      withReadyDatabase(async (database) => {
        await new MovieService(database).exportCsv(writeOut);
      }),
    );

  program
    .command('create-user')
    .description('create a user who can log in at POST /token')
    .requiredOption('--name <name>', "the user's name")
    .requiredOption('--email <email>', 'the email, which is the login name')
    .option('--password <password>', 'the password (omit it to be asked, or pipe it on stdin)')
    .option('--admin', 'make the user a superuser (movies:write and users:admin)', false)
    .action(async (options: { name: string; email: string; password?: string; admin: boolean }) => {
      // Asked before the database is opened: an embedded one stays free while the user types.
      const password = options.password ?? (await passwordFromUser());
      await withAccounts(async ({ users }) => {
        const weak = users.passwordProblems(password, options);
        const user = await users.createUser({
          name: options.name,
          email: options.email,
          password,
          is_superuser: options.admin,
        });
        warnIfWeak(weak);
        const role = user.is_superuser ? ' (superuser)' : '';
        process.stdout.write(`created user ${user.user_id} ${user.name} <${user.email}>${role}\n`);
      });
    });

  const usersCommand = program.command('users').description('list and manage user accounts');

  usersCommand
    .command('list')
    .description('list every user: id, email, name, status and role')
    .action(() =>
      withAccounts(async ({ users }) => {
        process.stdout.write('user_id\temail\tname\tactive\tsuperuser\n');
        let after: number | undefined;
        do {
          const page = await users.list({ limit: USERS_PAGE_MAX, after });
          for (const user of page.users) {
            process.stdout.write(
              `${user.user_id}\t${user.email}\t${user.name}\t${yesNo(user.is_active)}\t${yesNo(user.is_superuser)}\n`,
            );
          }
          after = page.next;
        } while (after !== undefined);
      }),
    );

  usersCommand
    .command('set-password')
    .description("set a user's password (ends all of the user's logins)")
    .argument('<email>', 'the user')
    .option('--password <password>', 'the new password (omit it to be asked, or pipe it on stdin)')
    .action(async (email: string, options: { password?: string }) => {
      const password = options.password ?? (await passwordFromUser());
      await withAccounts(async ({ users }) => {
        const user = await users.getByEmail(email);
        const { revokedSessions } = await users.setPassword(user.user_id, password);
        warnIfWeak(users.passwordProblems(password, user));
        process.stdout.write(
          `password changed for ${user.email}; ${plural(revokedSessions, 'login')} ended\n`,
        );
      });
    });

  const changes: [string, string, UserUpdate, string][] = [
    ['activate', 'let a disabled user log in again', { is_active: true }, 'activated'],
    [
      'deactivate',
      "disable a user: logins refused, the user's tokens stop working",
      { is_active: false },
      'deactivated',
    ],
    ['promote', 'make a user a superuser', { is_superuser: true }, 'promoted to superuser'],
    ['demote', 'make a superuser a regular user', { is_superuser: false }, 'demoted'],
  ];
  for (const [name, description, change, done] of changes) {
    usersCommand
      .command(name)
      .description(description)
      .argument('<email>', 'the user')
      .action((email: string) =>
        withAccounts(async ({ users }) => {
          const user = await users.update((await users.getByEmail(email)).user_id, change);
          process.stdout.write(`${user.email} ${done}\n`);
        }),
      );
  }

  usersCommand
    .command('delete')
    .description('delete a user and all of their logins')
    .argument('<email>', 'the user')
    .action((email: string) =>
      withAccounts(async ({ users }) => {
        const user = await users.getByEmail(email);
        await users.delete(user.user_id);
        process.stdout.write(`deleted user ${user.user_id} <${user.email}>\n`);
      }),
    );

  return program;
}

buildCli().parseAsync(process.argv).catch(report);
