import { InvalidInputError } from '../exc.js';
import { MovieLimits, type Movie } from '../schemas/movies.js';

/**
 * The movies CSV dialect, for `myapi import-movies` and `myapi export-movies`:
 *
 * - UTF-8 (a leading byte-order mark is ignored), records end with LF or CRLF;
 * - the first record is the header `movie_id,title,released,rating`, exactly;
 * - a field may be quoted with `"`; inside quotes `""` is one quote, and commas and line breaks
 *   are part of the field; a quote inside an unquoted field is an error;
 * - movie_id: 1 to 2147483647; released: a year from 1888 to 2100; rating: 0.0 to 9.9 written
 *   with at most one decimal (`9`, `9.0`); title: 1 to 500 characters, not blank, kept exactly.
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

/**
 * Splits CSV text, fed in chunks of any size, into records. Kept as a small state machine
 * rather than a dependency: the dialect is fixed and errors must carry the line number.
 */
export class CsvParser {
  private field = '';
  private fields: string[] = [];
  /** Inside quotes; or just after a closing quote (only `,` or a line end may follow). */
  private state: 'start' | 'unquoted' | 'quoted' | 'quote-in-quoted' | 'cr' = 'start';
  private line = 1;
  private recordLine = 1;
  private started = false;

  /** The records completed by this chunk. */
  push(chunk: string): CsvRecord[] {
    const records: CsvRecord[] = [];
    let text = chunk;
    if (!this.started) {
      this.started = true;
      if (text.startsWith('\uFEFF')) text = text.slice(1);
    }
    // Runs of ordinary characters are copied as one slice: character by character, a 10 MB
    // field took seconds.
    let i = 0;
    while (i < text.length) {
      switch (this.state) {
        case 'quoted': {
          const quote = text.indexOf('"', i);
          const end = quote === -1 ? text.length : quote;
          const part = text.slice(i, end);
          this.field += part;
          this.line += countLineFeeds(part);
          if (quote !== -1) this.state = 'quote-in-quoted';
          i = end + 1;
          break;
        }
        case 'start':
        case 'unquoted': {
          SPECIAL.lastIndex = i;
          const special = SPECIAL.exec(text);
          const end = special === null ? text.length : special.index;
          if (end > i) {
            this.field += text.slice(i, end);
            this.state = 'unquoted';
          }
          if (special === null) return records;
          if (special[0] === '"' && this.state === 'start') this.state = 'quoted';
          else this.endOfField(special[0], records, undefined);
          i = end + 1;
          break;
        }
        case 'quote-in-quoted': {
          const char = text.charAt(i);
          if (char === '"') {
            this.field += '"';
            this.state = 'quoted';
          } else this.endOfField(char, records, 'after a closing quote');
          i++;
          break;
        }
        case 'cr':
          if (text.charAt(i) !== '\n') {
            throw new CsvError(this.line, 'a carriage return not followed by LF');
          }
          this.endRecord(records);
          i++;
          break;
      }
    }
    return records;
  }

  /** The last record, if the text did not end with a line break; errors if a quote is open. */
  end(): CsvRecord[] {
    if (this.state === 'quoted') {
      throw new CsvError(this.recordLine, 'a quoted field is never closed');
    }
    if (this.state === 'cr') throw new CsvError(this.line, 'a carriage return not followed by LF');
    if (this.state === 'start' && this.fields.length === 0) return [];
    const records: CsvRecord[] = [];
    this.endRecord(records);
    return records;
  }

  private endOfField(char: string, records: CsvRecord[], afterQuote: string | undefined): void {
    if (char === ',') {
      this.fields.push(this.field);
      this.field = '';
      this.state = 'start';
    } else if (char === '\n') {
      this.endRecord(records);
    } else if (char === '\r') {
      this.state = 'cr';
    } else if (afterQuote !== undefined) {
      throw new CsvError(this.line, `unexpected ${JSON.stringify(char)} ${afterQuote}`);
    } else if (char === '"') {
      throw new CsvError(this.line, 'a quote inside an unquoted field (quote the whole field)');
    } else {
      this.field += char;
      this.state = 'unquoted';
    }
  }

  private endRecord(records: CsvRecord[]): void {
    this.fields.push(this.field);
    records.push({ line: this.recordLine, fields: this.fields });
    this.field = '';
    this.fields = [];
    this.state = 'start';
    this.line++;
    this.recordLine = this.line;
  }
}

/** What ends a run of ordinary characters outside quotes. */
const SPECIAL = /[,\r\n"]/g;

function countLineFeeds(text: string): number {
  let count = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++;
  return count;
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

const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

function csvField(text: string): string {
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(movie: Movie): string {
  return `${movie.movie_id},${csvField(movie.title)},${movie.released},${movie.rating.toFixed(1)}\n`;
}
