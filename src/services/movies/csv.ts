/** The movies CSV dialect of import-movies and export-movies, on csv-parse and csv-stringify. */
import { Readable } from 'node:stream';
import { CsvError as ParseError, parse } from 'csv-parse';
import { stringify } from 'csv-stringify/sync';
import { InvalidInputError } from '../../exc.js';
import { MovieLimits, type Movie } from '../../schemas/movies.js';

/*
 * - UTF-8 (a leading byte-order mark is ignored), records end with LF or CRLF (a lone CR is
 *   part of its field);
 * - the first record is the header `movie_id,title,released,rating`, exactly;
 * - a field may be quoted with `"`; inside quotes `""` is one quote, and commas and line breaks
 *   are part of the field; a quote inside an unquoted field is an error;
 * - movie_id: 1 to 2147483647; released: a year from 1888 to 2100; rating: 0.0 to 9.9 written
 *   with at most one decimal (`9`, `9.0`); title: 1 to 500 characters, not blank, no NUL,
 *   kept exactly.
 *
 * Export writes LF line ends, ratings with one decimal, and quotes a title only when it holds a
 * quote, a comma, a line break or blanks at either end, so exporting what was imported from an
 * export gives the same bytes.
 */
export const CSV_HEADER = 'movie_id,title,released,rating';

/** A row the importer cannot take: the message names the line, so the file can be fixed. */
export class CsvError extends InvalidInputError {
  readonly line: number;

  constructor(line: number, reason: string) {
    super(`line ${line}: ${reason}`);
    this.line = line;
  }
}

export interface CsvRecord {
  /** The line the record starts on (1 is the header). */
  line: number;
  fields: string[];
}

/** csv-parse's reasons, in the words of this dialect (its own name a field by its index). */
const REASONS: Partial<Record<ParseError['code'], string>> = {
  CSV_QUOTE_NOT_CLOSED: 'a quoted field is never closed',
  INVALID_OPENING_QUOTE: 'a quote inside an unquoted field (quote the whole field)',
  CSV_INVALID_CLOSING_QUOTE: 'unexpected text after a closing quote',
  CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'unexpected text after a closing quote',
};

function countLineFeeds(text: string): number {
  let count = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++;
  return count;
}

/**
 * The chunks with no UTF-16 surrogate pair split between two: csv-parse encodes each string
 * chunk to UTF-8 on its own, which would turn each half of a split pair into U+FFFD.
 */
async function* wholeCodePoints(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  let held = '';
  for await (const chunk of chunks) {
    const text = held + chunk;
    const last = text.charCodeAt(text.length - 1);
    const split = last >= 0xd800 && last <= 0xdbff;
    held = split ? text.slice(-1) : '';
    if (text.length > held.length) yield split ? text.slice(0, -1) : text;
  }
  if (held !== '') yield held;
}

/**
 * The records of CSV text fed in chunks of any size, each with the line it starts on. Lines
 * are counted as LFs: a record ends at one, and the others sit inside its quoted fields.
 */
export async function* csvRecords(chunks: AsyncIterable<string>): AsyncGenerator<CsvRecord> {
  // Where the record being parsed starts: by our count, and by the parser's (which also counts
  // lone CRs). Kept as the parser goes, since an error overtakes the records still buffered.
  let line = 1;
  let parserLine = 1;
  /** The start lines of the records parsed and not yet taken, in order. */
  const starts: number[] = [];
  const parser = parse({
    bom: true,
    record_delimiter: ['\r\n', '\n'],
    relax_column_count: true,
    on_record: (fields, context) => {
      starts.push(line);
      line += 1 + fields.reduce((n, field) => n + countLineFeeds(field), 0);
      parserLine = context.lines + 1;
      return fields;
    },
  });
  const source = Readable.from(wholeCodePoints(chunks));
  source.once('error', (error) => parser.destroy(error));
  source.pipe(parser);
  try {
    for await (const fields of parser as AsyncIterable<string[]>) {
      yield { line: starts.shift() ?? line, fields };
    }
  } catch (error) {
    if (!(error instanceof ParseError)) throw error;
    const after = /got (".*?") at line/.exec(error.message)?.[1];
    const reason =
      error.code === 'CSV_INVALID_CLOSING_QUOTE' && after !== undefined
        ? `unexpected ${after} after a closing quote`
        : (REASONS[error.code] ?? error.message);
    const at = error.code === 'CSV_QUOTE_NOT_CLOSED' ? parserLine : Number(error.lines);
    throw new CsvError(line + Math.max(0, at - parserLine), reason);
  } finally {
    source.destroy();
  }
}

const ID = /^[0-9]{1,10}$/;
const YEAR = /^[0-9]{1,4}$/;
const RATING = /^[0-9](\.[0-9])?$/;

/** A record of the file as a movie, by the same limits as the HTTP API. */
export function movieFromRecord(record: CsvRecord): Movie {
  const { line, fields } = record;
  if (fields.length !== 4) {
    throw new CsvError(line, `expected 4 fields (${CSV_HEADER}), found ${fields.length}`);
  }
  const [id, title, released, rating] = fields as [string, string, string, string];
  const movieId = Number(id);
  if (!ID.test(id) || movieId < 1 || movieId > 2_147_483_647) {
    throw new CsvError(
      line,
      `movie_id must be a whole number from 1 to 2147483647 (got ${JSON.stringify(id)})`,
    );
  }
  if (title.trim() === '') throw new CsvError(line, 'title must not be empty');
  // PostgreSQL text cannot hold U+0000: it would fail the whole import as an encoding error.
  if (title.includes('\u0000')) throw new CsvError(line, 'title must not contain a NUL character');
  // Code points, as JSON Schema's maxLength counts them for the HTTP API.
  // eslint-disable-next-line @typescript-eslint/no-misused-spread
  const length = [...title].length;
  if (length > MovieLimits.titleMaxLength) {
    throw new CsvError(
      line,
      `title is ${length} characters, at most ${MovieLimits.titleMaxLength} allowed`,
    );
  }
  const year = Number(released);
  if (!YEAR.test(released) || year < MovieLimits.releasedMin || year > MovieLimits.releasedMax) {
    throw new CsvError(
      line,
      `released must be a year from ${MovieLimits.releasedMin} to ${MovieLimits.releasedMax} (got ${JSON.stringify(released)})`,
    );
  }
  if (!RATING.test(rating)) {
    throw new CsvError(
      line,
      `rating must be 0.0 to 9.9 with at most one decimal (got ${JSON.stringify(rating)})`,
    );
  }
  return { movie_id: movieId, title, released: year, rating: Number(rating) };
}

/** Checks the header record: the columns are positional, so their order is part of the format. */
export function checkHeader(record: CsvRecord | undefined): void {
  if (record === undefined) throw new CsvError(1, `empty file: expected the header ${CSV_HEADER}`);
  if (record.fields.join(',') !== CSV_HEADER || record.fields.length !== 4) {
    throw new CsvError(record.line, `the header must be ${CSV_HEADER}`);
  }
}

/** The movies of a CSV file, each with the line it starts on, after its header is checked. */
export async function* movieRows(
  chunks: AsyncIterable<string>,
): AsyncGenerator<{ line: number; movie: Movie }> {
  let header = true;
  for await (const record of csvRecords(chunks)) {
    if (header) {
      checkHeader(record);
      header = false;
    } else {
      yield { line: record.line, movie: movieFromRecord(record) };
    }
  }
  if (header) checkHeader(undefined);
}

/** Blanks at either end of a title would be lost by a reader that trims: they are quoted. */
const STRINGIFY = { record_delimiter: 'unix', quoted_match: /^\s|\s$/ } as const;

/** Movies as CSV lines, each ending with LF (the header is CSV_HEADER). */
export function csvLines(list: readonly Movie[]): string {
  return stringify(
    list.map((m) => [String(m.movie_id), m.title, String(m.released), m.rating.toFixed(1)]),
    STRINGIFY,
  );
}

export function csvLine(movie: Movie): string {
  return csvLines([movie]);
}
