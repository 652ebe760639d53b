/** `myapi import-movies` and `myapi export-movies`: the catalogue as CSV (services/movies/csv.ts). */
import { createReadStream, statSync } from 'node:fs';
import type { Command } from 'commander';
import { CsvError } from '../services/movies/index.js';
import { InputError, progressPrinter, secondsSince, withCatalogue } from './common.js';

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

async function importMovies(file: string): Promise<void> {
  const size = fileSize(file);
  await withCatalogue(async ({ movies }, database) => {
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
      process.stdout.write(
        `imported ${inserted} movies in ${secondsSince(started)} s; ${total} movies in ${database.label}\n`,
      );
    } catch (error) {
      if (error instanceof CsvError) {
        throw new InputError(`${file} ${error.message}; nothing was imported`);
      }
      throw error;
    }
  });
}

export function registerMovies(program: Command): void {
  program
    .command('import-movies')
    .description(
      'add the movies of a CSV file (header movie_id,title,released,rating; "-" for stdin) in one transaction: a bad row or a taken movie_id aborts it with its line number and changes nothing',
    )
    .argument('<file>', 'the CSV file, as export-movies writes it')
    .action(importMovies);

  program
    .command('export-movies')
    .description('write every movie to stdout as CSV (the format import-movies reads), by movie_id')
    .action(() =>
      withCatalogue(async ({ movies }) => {
        await movies.exportCsv(writeOut);
      }),
    );
}
