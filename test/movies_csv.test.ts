import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createServices } from '../src/services/index.js';
import {
  CsvError,
  checkHeader,
  csvLine,
  movieFromRecord,
  type MovieService,
} from '../src/services/movies/index.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { chunksOf, csvFailure, HEADER, parse, TRICKY, TRICKY_CSV } from './movies_csv_fixtures.js';

describe('movies CSV dialect', () => {
  it('writes quotes only where needed, ratings with one decimal, LF line ends', () => {
    assert.equal(
      TRICKY_CSV,
      HEADER +
        '1,Plain,1994,9.2\n' +
        '2,"Comma, in the title",1972,9.0\n' +
        '3,"The ""Quoted"" One",2008,0.0\n' +
        '4,"Two\nlines",1888,9.9\n' +
        '5,"Windows\r\nline",2100,5.5\n' +
        '6,Léon: Amélie, Ça 🎬 東京,2001,8.3\n'.replace(
          'Léon: Amélie, Ça 🎬 東京',
          '"Léon: Amélie, Ça 🎬 東京"',
        ) +
        '7," leading and trailing ",2000,1.0\n' +
        '8,"""",2000,1.0\n',
    );
  });

  it('reads back exactly what it writes, whatever the chunk boundaries', async () => {
    for (const size of [1, 2, 7, 1000]) {
      const records = await parse(TRICKY_CSV, size);
      checkHeader(records[0]);
      assert.deepEqual(records.slice(1).map(movieFromRecord), TRICKY, `chunks of ${size}`);
    }
  });

  it('numbers records by the line they start on, CRLF and a BOM accepted', async () => {
    const records = await parse(
      '\uFEFFmovie_id,title,released,rating\r\n1,"a\nb",2000,1\r\n2,c,2000,1',
    );
    assert.deepEqual(
      records.map((r) => [r.line, r.fields]),
      [
        [1, ['movie_id', 'title', 'released', 'rating']],
        [2, ['1', 'a\nb', '2000', '1']],
        [4, ['2', 'c', '2000', '1']],
      ],
    );
  });

  it('names the line and the reason of malformed text', async () => {
    const cases: [string, number, RegExp][] = [
      [`${HEADER}1,"never closed,2000,1\n2,x,2000,1\n`, 2, /quoted field is never closed/],
      [`${HEADER}1,a"b,2000,1\n`, 2, /quote inside an unquoted field/],
      [`${HEADER}1,"a"b,2000,1\n`, 2, /unexpected "b" after a closing quote/],
      // A lone CR is data (csv-parse ends records at LF or CRLF only): here it spoils the rating.
      [`${HEADER}1,a,2000,1\rx`, 2, /rating must be 0\.0 to 9\.9 .*\(got "1\\rx"\)/],
      [`${HEADER}1,"a\nb",2000,1\n2,"x"y,2000,1\n`, 4, /unexpected "y" after a closing quote/],
    ];
    for (const [text, line, reason] of cases) {
      const error = await csvFailure(async () => (await parse(text)).slice(1).map(movieFromRecord));
      assert.equal(error.line, line, text);
      assert.match(error.message, reason);
      assert.match(error.message, new RegExp(`^line ${line}: `));
    }
  });

  it('refuses rows the columns cannot hold, naming the line', async () => {
    const cases: [string, RegExp][] = [
      ['1,a,2000,10.0', /rating must be 0\.0 to 9\.9/],
      ['1,a,2000,10', /rating/],
      ['1,a,2000,-0.1', /rating/],
      ['1,a,2000,8.25', /rating/],
      ['1,a,2000,', /rating/],
      ['1,a,0,1', /released must be a year from 1888 to 2100/],
      ['1,a,1887,1', /released/],
      ['1,a,2101,1', /released/],
      ['1,a,20x0,1', /released/],
      ['1,,2000,1', /title must not be empty/],
      ['1,"   ",2000,1', /title must not be empty/],
      [`1,${'x'.repeat(501)},2000,1`, /title is 501 characters, at most 500/],
      [`1,${'x'.repeat(10 * 1024 * 1024)},2000,1`, /title is 10485760 characters/],
      ['0,a,2000,1', /movie_id must be a whole number/],
      ['2147483648,a,2000,1', /movie_id/],
      ['-1,a,2000,1', /movie_id/],
      ['1,a,2000', /expected 4 fields .* found 3/],
      ['1,a,b,2000,1', /expected 4 fields/],
      ['', /expected 4 fields .* found 1/],
      ['1,a\u0000b,2000,1', /title must not contain a NUL character/],
      ['1,"\u0000",2000,1', /title must not contain a NUL character/],
      ['\u00001,a,2000,1', /movie_id must be a whole number .*\\u0000/],
      ['1,a,2000\u0000,1', /released must be a year .*\\u0000/],
      ['1,a,2000,1\u0000', /rating must be .*\\u0000/],
    ];
    for (const [row, reason] of cases) {
      const records = await parse(`${HEADER}2,ok,2000,1\n${row}\n`, 4096);
      const error = await csvFailure(() => records.slice(1).map(movieFromRecord));
      assert.equal(error.line, 3, row.slice(0, 40));
      assert.match(error.message, reason, row.slice(0, 40));
    }
    const edges = await parse(`${HEADER}2147483647,${'é'.repeat(500)},1888,0\n1,a,2100,9.9\n`);
    assert.equal(edges.slice(1).map(movieFromRecord).length, 2);
  });

  it('requires the header, exactly', async () => {
    for (const text of ['', 'id,title,released,rating\n', 'movie_id,title,rating,released\n']) {
      const records = await parse(text);
      const error = await csvFailure(() => {
        checkHeader(records[0]);
      });
      assert.equal(error.line, 1);
    }
  });
});

/** The service behind the commands, in process on both databases (the commands are below). */
describeEachDatabase('MovieService CSV import and export', (kind) => {
  const opened: TestDatabase[] = [];
  after(async () => {
    for (const t of opened) await t.close();
  });
  const fresh = async () => {
    const t = await createTestDatabase(kind);
    opened.push(t);
    return createServices(t.database).movies;
  };
  const exportOf = async (service: MovieService, pageSize?: number) => {
    let text = '';
    await service.exportCsv(async (chunk) => {
      text += chunk;
    }, pageSize);
    return text;
  };
  const importFailure = async (work: Promise<unknown>): Promise<CsvError> => {
    try {
      await work;
    } catch (error) {
      assert.ok(error instanceof CsvError, String(error));
      return error;
    }
    assert.fail('expected a CsvError');
  };

  it('round-trips byte for byte through two databases, in pages, whatever the chunks', async () => {
    const first = await fresh();
    assert.equal(await exportOf(first), HEADER);
    assert.deepEqual(await first.importCsv(chunksOf(TRICKY_CSV, 5)), { inserted: 8, total: 8 });
    const exported = await exportOf(first, 3);
    assert.equal(exported, TRICKY_CSV);
    const second = await fresh();
    await second.importCsv(chunksOf(exported, 4096));
    assert.equal(Buffer.compare(Buffer.from(await exportOf(second)), Buffer.from(TRICKY_CSV)), 0);
  });

  it('a bad row after whole batches were inserted leaves the table as it was', async () => {
    const service = await fresh();
    await service.importCsv(chunksOf(TRICKY_CSV, 4096));
    const good = Array.from({ length: 250 }, (_, i) =>
      csvLine({ movie_id: 100 + i, title: `Movie ${i}`, released: 2000, rating: 5 }),
    ).join('');
    const batches: number[] = [];
    const error = await importFailure(
      service.importCsv(
        chunksOf(`${HEADER}${good}999,Ten,2000,10.0\n`, 1000),
        (done) => batches.push(done),
        100,
      ),
    );
    assert.deepEqual(batches, [100, 200], 'two batches went in before the bad row');
    assert.equal(error.line, 252);
    assert.match(error.message, /^line 252: rating must be 0\.0 to 9\.9/);
    assert.equal(await exportOf(service), TRICKY_CSV);
  });

  it('a movie_id already there, or twice in the file, is refused with its line', async () => {
    const service = await fresh();
    await service.importCsv(chunksOf(TRICKY_CSV, 4096));
    const taken = await importFailure(
      service.importCsv(chunksOf(`${HEADER}100,New,2000,1\n3,Again,2000,1\n`, 4096)),
    );
    assert.equal(taken.message, 'line 3: movie_id 3 already exists');
    const twice = await importFailure(
      service.importCsv(
        chunksOf(`${HEADER}100,New,2000,1\n101,x,2000,1\n100,Again,2000,1\n`, 4096),
      ),
    );
    assert.equal(twice.message, 'line 4: movie_id 100 already exists');
    const empty = await importFailure(service.importCsv(chunksOf('', 1)));
    assert.equal(empty.line, 1);
    assert.equal(await exportOf(service), TRICKY_CSV);
  });

  it('a NUL character in a field is refused with its line and field, before the database', async () => {
    const service = await fresh();
    await service.importCsv(chunksOf(TRICKY_CSV, 4096));
    const cases: [string, RegExp][] = [
      ['100,Fine,2000,1\n101,"Nul\u0000title",2000,1\n', /^line 3: title must not contain a NUL/],
      ['100,Nul\u0000,2000,1\n', /^line 2: title must not contain a NUL/],
      ['100,Fine,2000\u0000,1\n', /^line 2: released must be a year/],
    ];
    for (const [rows, reason] of cases) {
      const error = await importFailure(service.importCsv(chunksOf(`${HEADER}${rows}`, 7)));
      assert.match(error.message, reason);
    }
    assert.equal(await exportOf(service), TRICKY_CSV);
  });
});
