/** Shared by the movies CSV suites: the tricky titles, and parsing helpers over csvRecords. */
import assert from 'node:assert/strict';
import { CsvError, csvLine, csvRecords, type CsvRecord } from '../src/services/movies/index.js';

export const HEADER = 'movie_id,title,released,rating\n';

export async function* chunksOf(text: string, size: number): AsyncGenerator<string> {
  for (let i = 0; i < text.length; i += size) {
    await Promise.resolve();
    yield text.slice(i, i + size);
  }
}

/** Every record of `text`, fed in chunks of `size` characters (to cross chunk boundaries). */
export async function parse(text: string, size = 3): Promise<CsvRecord[]> {
  const records: CsvRecord[] = [];
  for await (const record of csvRecords(chunksOf(text, size))) records.push(record);
  return records;
}

export async function csvFailure(work: () => unknown): Promise<CsvError> {
  try {
    await work();
  } catch (error) {
    assert.ok(error instanceof CsvError, String(error));
    return error;
  }
  assert.fail('expected a CsvError');
}

/** Titles that exercise the dialect: quotes, commas, line breaks, accents, blanks at the ends. */
export const TRICKY = [
  { movie_id: 1, title: 'Plain', released: 1994, rating: 9.2 },
  { movie_id: 2, title: 'Comma, in the title', released: 1972, rating: 9 },
  { movie_id: 3, title: 'The "Quoted" One', released: 2008, rating: 0 },
  { movie_id: 4, title: 'Two\nlines', released: 1888, rating: 9.9 },
  { movie_id: 5, title: 'Windows\r\nline', released: 2100, rating: 5.5 },
  { movie_id: 6, title: 'Léon: Amélie, Ça 🎬 東京', released: 2001, rating: 8.3 },
  { movie_id: 7, title: ' leading and trailing ', released: 2000, rating: 1 },
  { movie_id: 8, title: '"', released: 2000, rating: 1 },
];
export const TRICKY_CSV = HEADER + TRICKY.map(csvLine).join('');
