/** What every command group shares: settings, the database and services, errors, progress. */
import { InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { ConfigError, loadSettings, type LoadOptions, type Settings } from '../backend/config.js';
import {
  DatabaseInUseError,
  DatabaseUnavailableError,
  describeUnavailable,
  MigrationChangedError,
  openDatabase,
  type Database,
} from '../backend/database.js';
import { AppError } from '../exc.js';
import { NotMigratedError, prepareDatabase } from '../prepare.js';
import {
  accountOptions,
  createServices,
  type AccountServices,
  type CatalogueServices,
} from '../services/index.js';

/** Bad input at the command line. */
export class InputError extends Error {
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
  MigrationChangedError,
];

function fail(message: string): never {
  process.stderr.write(`myapi: error: ${message}\n`);
  process.exit(1);
}

/** Ends the process after a failed command: one line on stderr, exit status 1. */
export function report(error: unknown): never {
  if (EXPECTED_ERRORS.some((kind) => error instanceof kind)) fail((error as Error).message);
  const unavailable = describeUnavailable(error);
  if (unavailable !== undefined) fail(unavailable);
  fail(`unexpected error: ${error instanceof Error ? error.message : String(error)}`);
}

/** The settings from the environment and .env, warning about unknown MYAPI_ names. */
export function settingsFrom(options: LoadOptions = {}): Settings {
  const { settings, unknown } = loadSettings(options);
  if (unknown.length > 0) {
    process.stderr.write(`myapi: warning: ignoring unknown settings: ${unknown.join(', ')}\n`);
  }
  return settings;
}

/** Opens the configured database for a one-off command (through a running server if need be). */
export async function withDatabase<T>(
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
export function withReadyDatabase<T>(
  work: (database: Database, settings: Settings) => Promise<T>,
): Promise<T> {
  return withDatabase(async (database, settings) => {
    await prepareDatabase(database, pino({ level: 'warn' }, process.stderr));
    return work(database, settings);
  });
}

/** The catalogue's services on the configured database (no account settings needed). */
export function withCatalogue<T>(
  work: (services: CatalogueServices, database: Database) => Promise<T>,
): Promise<T> {
  return withReadyDatabase((database) => work(createServices(database), database));
}

/** The account services on the configured database, for the user commands. */
export function withAccounts<T>(work: (services: AccountServices) => Promise<T>): Promise<T> {
  return withReadyDatabase((database, settings) => {
    const accounts = accountOptions(settings);
    // Full speed: an operator waits for this hash, and no requests compete with it here.
    return work(createServices(database, { accounts: { ...accounts, passwords: {} } }));
  });
}

export const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** commander's parser of a count argument. */
export function positiveInteger(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > 100_000_000) {
    throw new InvalidArgumentError('must be a whole number from 1 to 100000000');
  }
  return Number(value);
}

/** Progress on stderr: rewritten in place on a terminal, one line each otherwise. */
export function progressPrinter(label: string): (done: number, total: number) => void {
  const tty = process.stderr.isTTY;
  return (done, total) => {
    const line = `${label}: ${done}/${total} (${Math.floor((done / total) * 100)}%)`;
    process.stderr.write(tty ? `\r${line}${done === total ? '\n' : ''}` : `${line}\n`);
  };
}

/** Seconds since `started`, as the commands report them. */
export function secondsSince(started: number): string {
  return ((Date.now() - started) / 1000).toFixed(1);
}
